"""Shared source instances: one feed per ``SHARED="true"`` stream, however many rules read it.

eKuiper's ``SHARED`` stream property makes the rules of a stream share one source instance.
Here they share one :class:`~.source_reader.SourceFeed`: one subscription, one read and one
decode per batch, and every rule filters and projects the same Arrow batch. The feed starts
with the stream's first running rule and stops (its source closed) with its last.

Streams that do not say ``SHARED`` give each rule a source of its own, as eKuiper does: a
file, simulator or memory stream then replays from its start for every rule, and a rule's
stop or crash never holds the others back. Sharing is a choice of the stream, not a default.

A feed is keyed by the stream's name and the source's configuration, so a stream replaced by
a new definition gets a new feed while rules on the old one still run.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Callable

from .instances import quietly
from .source_reader import Inlet, SourceFeed

_log = logging.getLogger("plutino.engine")
JOIN_S = 10.0  # how long the last rule's stop waits for a read in progress before closing


class SharedFeeds:
    """The shared feeds of one engine. Thread-safe."""

    def __init__(self) -> None:
        self._feeds: dict[str, SourceFeed] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(stream: str, config: Any) -> str:
        return f"{stream}\x00{json.dumps(config, sort_keys=True, default=str)}"

    def attach(self, key: str, make: Callable[[], SourceFeed], inlet: Inlet) -> SourceFeed:
        """Join the feed under ``key``, made and started by ``make()`` for its first rule."""
        with self._lock:
            feed = self._feeds.get(key)
            fresh = feed is None or feed.stopped.is_set() or feed.ended
            if fresh:
                feed = make()
                self._feeds[key] = feed
            assert feed is not None
            feed.attach(inlet)
        if fresh:
            feed.start()
        return feed

    def detach(self, key: str, feed: SourceFeed, inlet: Inlet) -> None:
        """Leave the feed; the last rule to leave stops it and closes its source."""
        with self._lock:
            inlet.detached = True
            last = feed.detach(inlet)
            if last and self._feeds.get(key) is feed:
                del self._feeds[key]
        if last:
            feed.stop()
            if feed.join(JOIN_S):
                quietly(feed.source.close)
            else:
                _log.error("shared source %s is still inside a plugin call %g s after its last rule stopped;"
                           " it is left open", feed.what, JOIN_S)

    def readers(self) -> dict[str, int]:
        """Shared feeds and their rules, for status and tests."""
        with self._lock:
            return {k.split("\x00", 1)[0]: len(f.inlets) for k, f in self._feeds.items()}


__all__ = ["SharedFeeds"]
