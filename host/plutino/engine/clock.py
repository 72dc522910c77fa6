"""Clocks: where processing time comes from.

Rules read the time (to stamp arriving batches) and subscribe to ticks (to close
processing-time windows) through a :class:`Clock`. The :class:`SystemClock` ticks from one
thread for all its subscriptions; a :class:`ManualClock` moves only when told to, and delivers the tick
before ``advance`` returns, which makes window tests exact and instant.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import Callable, Protocol

Tick = Callable[[int], None]


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the epoch."""

    def subscribe(self, callback: Tick, interval_ms: int) -> Callable[[], None]:
        """Call ``callback(now_ms)`` as time passes (about every ``interval_ms``); return a
        function that ends the subscription."""


class SystemClock:
    """The wall clock. One ticker thread serves every subscription (a window's ticks), and it
    sleeps until the next one is due: ten thousand windowed rules cost one thread, not ten
    thousand. A tick is a call that queues work (``OpsRunner.tick``); it must not block."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, float, Tick]] = []  # (when, key, interval s, callback)
        self._live: set[int] = set()
        self._cond = threading.Condition()
        self._keys = itertools.count()
        self._thread: threading.Thread | None = None

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def subscribe(self, callback: Tick, interval_ms: int) -> Callable[[], None]:
        interval = max(interval_ms, 1) / 1000
        with self._cond:
            key = next(self._keys)
            self._live.add(key)
            heapq.heappush(self._due, (time.monotonic() + interval, key, interval, callback))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="plutino-clock", daemon=True)
                self._thread.start()
            self._cond.notify()

        def cancel() -> None:
            with self._cond:
                self._live.discard(key)

        return cancel

    def _run(self) -> None:
        due = self._due
        while True:
            with self._cond:
                while due and due[0][1] not in self._live:
                    heapq.heappop(due)
                if not due:
                    self._cond.wait()
                    continue
                wait = due[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                when, key, interval, callback = heapq.heappop(due)
                heapq.heappush(due, (max(when + interval, time.monotonic()), key, interval, callback))
            try:
                callback(self.now_ms())
            except Exception:  # a bug guard: a tick only queues work
                logging.getLogger("plutino.engine").exception("a clock tick failed")


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
