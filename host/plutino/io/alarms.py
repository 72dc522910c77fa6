"""One thread that calls back at given times, for the built-in sources that produce by the clock.

A source read on the engine's scheduler (``set_ready``) must say when it has data; a source
whose data is due at a time (the simulator) asks :func:`call_at` to call it back then. Every
such source of the process shares this one sleeping thread, so a thousand simulator streams
cost no thread each.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import Callable

_log = logging.getLogger("plutino.io")


class Alarms:
    """Callbacks due at CLOCK_MONOTONIC times, run (quickly: they only wake a task) in order."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._cond = threading.Condition()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def call_at(self, when: float, callback: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._due, (when, next(self._order), callback))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="plutino-alarms", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        due = self._due
        while True:
            with self._cond:
                if not due:
                    self._cond.wait()
                    continue
                wait = due[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                callback = heapq.heappop(due)[2]
            try:
                callback()
            except Exception:  # a bug guard: a callback only wakes a task
                _log.exception("an alarm's callback failed")


ALARMS = Alarms()
call_at = ALARMS.call_at

__all__ = ["ALARMS", "Alarms", "call_at"]
