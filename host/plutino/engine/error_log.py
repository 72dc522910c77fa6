"""Logging a rule's runtime errors without flooding the log.

A rule whose every batch fails (a bad value in each message, a function that refuses them)
would log one line per batch, many a second. :class:`ErrorLog` logs each distinct error (node
and message) the first time, then at most once per :data:`INTERVAL_S` with how many times it
happened meanwhile; the metrics count every one. Distinct errors are kept up to
:data:`MAX_KEYS` (then the oldest is forgotten), so errors that embed values cannot grow it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

INTERVAL_S = 10.0
MAX_KEYS = 256


class ErrorLog:
    """Throttled warnings: one line per distinct key per interval."""

    def __init__(self, log: logging.Logger, interval_s: float = INTERVAL_S, clock: "object | None" = None) -> None:
        self.log = log
        self.interval_s = interval_s
        self._now = getattr(clock, "monotonic", time.monotonic)
        self._seen: OrderedDict[str, list[float]] = OrderedDict()  # key -> [last logged, skipped]
        self._lock = threading.Lock()

    def warning(self, key: str, line: str) -> bool:
        """Log ``line`` unless one of the same ``key`` was logged less than the interval ago;
        True if logged."""
        now = self._now()
        with self._lock:
            entry = self._seen.get(key)
            if entry is not None and now - entry[0] < self.interval_s:
                entry[1] += 1
                return False
            skipped = int(entry[1]) if entry is not None else 0
            self._seen[key] = [now, 0]
            self._seen.move_to_end(key)
            while len(self._seen) > MAX_KEYS:
                self._seen.popitem(last=False)
        if skipped:
            line += f" (and {skipped} more time(s) since it was last logged)"
        self.log.warning(line)
        return True


__all__ = ["ErrorLog", "INTERVAL_S"]
