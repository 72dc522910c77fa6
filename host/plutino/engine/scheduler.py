"""The threads that run every rule of a process: a small pool that grows only when it must.

Rules own no threads. Their work -- reading a source that said it has data, running the
operators on a batch, writing a sink -- is a :class:`Task` that the :class:`Scheduler` runs on
one of its threads. A process with ten thousand idle rules therefore runs a handful of
threads, all asleep: an idle rule costs memory for its plan and queues, never a wake-up.

The pool keeps ``min_threads`` threads. Native calls release the GIL, so a few threads run
plugins in parallel; Python work is bound by the GIL whatever the count. A task that blocks
(a sink waiting for a slow server, a plugin call that ignored its timeout) holds its thread,
so when work has waited longer than ``GROW_AFTER_S`` with every thread busy, the pool adds a
thread, up to ``max_threads``; a thread idle for ``SHRINK_AFTER_S`` above the minimum ends.
A call stuck past its deadline gets its worker process replaced by the supervisor
(:mod:`plutino.dataplane.supervisor`), which is the bound on a thread lost for good.

Timers (:meth:`Scheduler.call_later`: a sink's retry, a source's reopen backoff, a batch's
linger) share one thread that sleeps until the next one is due.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import os
import threading
import time
from typing import Callable

_log = logging.getLogger("plutino.engine")

GROW_AFTER_S = 0.02  # work waiting this long with every thread busy adds a thread
SHRINK_AFTER_S = 30.0  # a thread above the minimum idle this long ends
_monotonic = time.monotonic


class Timer:
    """A call waiting for its time on the timer thread; :meth:`cancel` drops it."""

    __slots__ = ("fn", "cancelled")

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """A pool of threads for short units of work, and a timer thread. Thread-safe."""

    def __init__(self, min_threads: int | None = None, max_threads: int = 128, name: str = "plutino-pool") -> None:
        cores = os.cpu_count() or 1
        self.min_threads = max(2, min_threads if min_threads is not None else 2 * cores)
        self.max_threads = max(self.min_threads, max_threads)
        self.name = name
        self._work: collections.deque[tuple[float, Callable[[], None]]] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._threads = 0
        self._idle = 0
        self._numbers = itertools.count(1)
        self._timers: list[tuple[float, int, Timer]] = []
        self._timer_cond = threading.Condition(threading.Lock())
        self._timer_thread: threading.Thread | None = None
        self._order = itertools.count()

    # -- work ----------------------------------------------------------------------------
    def submit(self, fn: Callable[[], None]) -> None:
        """Run ``fn()`` on a pool thread soon. Its exceptions are logged, never raised."""
        with self._cond:
            self._work.append((_monotonic(), fn))
            if self._idle:
                self._cond.notify()
                return
            if self._threads < self.min_threads:
                self._spawn()
                return
        self._watch()  # every thread is busy: the timer thread grows the pool if this waits

    def _spawn(self) -> None:  # with self._cond held
        self._threads += 1
        threading.Thread(target=self._serve, name=f"{self.name}-{next(self._numbers)}", daemon=True).start()

    def _serve(self) -> None:
        cond, work = self._cond, self._work
        while True:
            with cond:
                while not work:
                    self._idle += 1
                    woken = cond.wait(SHRINK_AFTER_S)
                    self._idle -= 1
                    if not woken and not work and self._threads > self.min_threads:
                        self._threads -= 1
                        return
                fn = work.popleft()[1]
            try:
                fn()
            except BaseException:  # a bug guard: the tasks catch their own errors
                _log.exception("%s: a task failed", self.name)

    def threads(self) -> int:
        """Threads in the pool now (not counting the timer thread)."""
        return self._threads

    def _stalled(self) -> bool:
        """Work has waited GROW_AFTER_S with every thread busy; adds a thread if it may."""
        with self._cond:
            if not self._work or self._idle or self._threads >= self.max_threads:
                return False
            if _monotonic() - self._work[0][0] < GROW_AFTER_S:
                return True  # look again shortly
            self._spawn()
            _log.info("%s: every thread was busy; %d threads now", self.name, self._threads)
            return True

    # -- timers ---------------------------------------------------------------------------
    def call_later(self, delay_s: float, fn: Callable[[], None]) -> Timer:
        """Run ``fn()`` on a pool thread after ``delay_s`` seconds, unless cancelled."""
        timer = Timer(fn)
        with self._timer_cond:
            heapq.heappush(self._timers, (_monotonic() + max(0.0, delay_s), next(self._order), timer))
            self._ensure_timer_thread()
            self._timer_cond.notify()
        return timer

    def _watch(self) -> None:
        """Have the timer thread look at the pool until the waiting work runs."""
        with self._timer_cond:
            self._ensure_timer_thread()
            self._timer_cond.notify()

    def _ensure_timer_thread(self) -> None:  # with self._timer_cond held
        if self._timer_thread is None:
            self._timer_thread = threading.Thread(target=self._run_timers, name=f"{self.name}-timers", daemon=True)
            self._timer_thread.start()

    def _run_timers(self) -> None:
        timers = self._timers
        while True:
            stalled = self._stalled()
            with self._timer_cond:
                now = _monotonic()
                due: list[Timer] = []
                while timers and timers[0][0] <= now:
                    due.append(heapq.heappop(timers)[2])
                if not due:
                    wait = timers[0][0] - now if timers else None
                    if stalled:
                        wait = GROW_AFTER_S / 2 if wait is None else min(wait, GROW_AFTER_S / 2)
                    self._timer_cond.wait(wait)
                    continue
            for timer in due:
                if not timer.cancelled:
                    self.submit(timer.fn)


_default: Scheduler | None = None
_default_lock = threading.Lock()


def default_scheduler() -> Scheduler:
    """The process's scheduler, made on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Scheduler()
        return _default


__all__ = ["GROW_AFTER_S", "Scheduler", "Timer", "default_scheduler"]
