"""MQTT topic filters: which topics a filter matches, and whether two filters can match one topic.

A shared connection (:mod:`.mqtt_hub`) routes each message it receives by its topic to the
sources whose filter matches it (:func:`matches`), and keeps filters that could both match one
topic on different connections (:func:`overlap`): a broker may send a client one copy of a
message per matching subscription (mosquitto 2 does), and those copies cannot be told apart
in MQTT 3.1.1, so each would reach every matching source once per copy.
"""

from __future__ import annotations


def is_wildcard(topic_filter: str) -> bool:
    return "+" in topic_filter or "#" in topic_filter


def matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` matches ``topic_filter`` (MQTT 3.1.1 §4.7: ``+`` is one level, ``#``
    the rest, including none; a wildcard first level does not match topics starting with $)."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    levels = topic.split("/")
    parts = topic_filter.split("/")
    for i, part in enumerate(parts):
        if part == "#":
            return True
        if i >= len(levels):
            return False
        if part != "+" and part != levels[i]:
            return False
    return len(parts) == len(levels)


def overlap(a: str, b: str) -> bool:
    """Whether some topic could match both filters ``a`` and ``b``."""
    pa, pb = a.split("/"), b.split("/")
    for i in range(max(len(pa), len(pb))):
        x = pa[i] if i < len(pa) else None
        y = pb[i] if i < len(pb) else None
        if x == "#" or y == "#":
            return True
        if x is None or y is None:
            return False
        if x != y and x != "+" and y != "+":
            return False
    return True


__all__ = ["is_wildcard", "matches", "overlap"]
