"""Clocks: where processing time comes from.

Rules read the time (to stamp arriving batches) and subscribe to ticks (to close
processing-time windows) through a :class:`Clock`. The :class:`SystemClock` ticks from the
process's one alarm thread; a :class:`ManualClock` moves only when told to, and delivers the tick
before ``advance`` returns, which makes window tests exact and instant.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Protocol

from plutino.io.alarms import ALARMS, Alarms

Tick = Callable[[int], None]


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the epoch."""

    def subscribe(self, callback: Tick, interval_ms: int) -> Callable[[], None]:
        """Call ``callback(now_ms)`` as time passes (about every ``interval_ms``); return a
        function that ends the subscription."""


class SystemClock:
    """The wall clock. Its ticks (a window's) come from the process's one alarm thread
    (:mod:`plutino.io.alarms`), which sleeps until the next one is due: ten thousand windowed
    rules cost one thread, not ten thousand. A tick is a call that queues work
    (``OpsRunner.tick``); it must not block."""

    def __init__(self, alarms: Alarms | None = None) -> None:
        self.alarms = alarms or ALARMS

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def subscribe(self, callback: Tick, interval_ms: int) -> Callable[[], None]:
        interval = max(interval_ms, 1) / 1000
        live = [True]

        def tick(due: float) -> None:
            if not live[0]:
                return
            try:
                callback(self.now_ms())
            finally:
                following = max(due + interval, time.monotonic())
                self.alarms.call_at(following, lambda: tick(following))

        first = time.monotonic() + interval
        self.alarms.call_at(first, lambda: tick(first))

        def cancel() -> None:
            live[0] = False

        return cancel


class ManualClock:
    """A clock for tests: time stands still until :meth:`advance` or :meth:`set` moves it."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms
        self._subscribers: dict[int, Tick] = {}
        self._next = 0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        return self._now

    def subscribe(self, callback: Tick, interval_ms: int) -> Callable[[], None]:
        with self._lock:
            key = self._next
            self._next += 1
            self._subscribers[key] = callback

        def cancel() -> None:
            with self._lock:
                self._subscribers.pop(key, None)

        return cancel

    def set(self, now_ms: int) -> None:
        """Jump to ``now_ms`` and tick every subscriber (in the caller's thread)."""
        with self._lock:
            self._now = now_ms
            subscribers = list(self._subscribers.values())
        for callback in subscribers:
            callback(now_ms)

    def advance(self, ms: int) -> None:
        self.set(self._now + ms)


__all__ = ["Clock", "ManualClock", "SystemClock", "Tick"]
