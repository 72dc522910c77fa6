"""MQTT topic filters: which topics a filter matches, and whether two filters can match one topic.

A shared connection (:mod:`.mqtt_hub`) routes each message it receives by its topic to the
sources whose filter matches it (:func:`matches`), and keeps filters that could both match one
topic on different connections (:func:`overlap`): a broker may send a client one copy of a
message per matching subscription (mosquitto 2 does), and those copies cannot be told apart
in MQTT 3.1.1, so each would reach every matching source once per copy.
"""

from __future__ import annotations

SHARE_PREFIX = "$share/"
#: How to write a shared subscription (said with every refusal of one).
SHARE_FIX = ('write SHARE_GROUP="<group>" beside DATASOURCE="<filter>", or DATASOURCE="$share/<group>/<filter>"; '
             "a group is one or more characters other than '/', '+' and '#', e.g. SHARE_GROUP=\"g1\"")


def split_share(topic_filter: str) -> tuple[str | None, str]:
    """``("g1", "t/#")`` for ``$share/g1/t/#``; ``(None, topic_filter)`` for any other filter.
    A malformed one (``$share/g1`` with no filter) gives ``("g1", "")``: see :func:`share_problem`."""
    if not topic_filter.startswith(SHARE_PREFIX):
        return None, topic_filter
    group, _, rest = topic_filter[len(SHARE_PREFIX):].partition("/")
    return group, rest


def topic_of(topic_filter: str) -> str:
    """The filter the broker matches topics against: ``t/#`` for ``$share/g1/t/#``."""
    return split_share(topic_filter)[1]


def group_problem(group: str) -> str | None:
    """What is wrong with a share group's name (MQTT 5 §4.8.2: at least one character, none of
    ``/``, ``+``, ``#``), or None."""
    if not group:
        return "is empty"
    bad = [c for c in "/+#" if c in group]
    if bad:
        return f"contains {' and '.join(repr(c) for c in bad)}, which a share group name cannot hold"
    return None


def share_problem(topic_filter: str) -> str | None:
    """What is wrong with a ``$share/<group>/<filter>`` filter, or None (also for any filter
    that is not a shared one)."""
    if not topic_filter.startswith(SHARE_PREFIX):
        return None
    group, rest = split_share(topic_filter)
    assert group is not None
    problem = group_problem(group)
    if problem is not None:
        return f"the share group {group!r} of {topic_filter!r} {problem}"
    if not rest:
        return f"{topic_filter!r} names no topic filter after its share group"
    return None


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


__all__ = ["SHARE_FIX", "SHARE_PREFIX", "group_problem", "is_wildcard", "matches", "overlap", "share_problem",
           "split_share", "topic_of"]
