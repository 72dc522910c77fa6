"""Serial units of a rule's work on the shared :class:`~.scheduler.Scheduler`.

A :class:`Task` is a function that runs when kicked, never twice at once, however many threads
kick it: kicks while it runs make it run once more; kicks while it waits to run are one kick.
Each node of a rule (its source reader, its operators, each sink) is one task, so a node's
work stays in order and a plugin instance is never called from two threads at once, as the
contract promises -- without a thread of its own.

A :class:`Mailbox` is a task with a queue of items in front of it: ``post`` queues, the task
handles the items in order, at most ``BUDGET`` per turn before it lets other tasks run. Its
capacity is a *soft* bound: ``post`` never blocks (a thread of the pool must never wait for
another task's progress), so a producer asks :meth:`Mailbox.full` before it takes more in,
and parks until the mailbox calls it back with room again (:meth:`Mailbox.wake_when_room`).
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Callable

from .scheduler import Scheduler

BUDGET = 16  # items (or source reads) a task handles per turn before it yields its thread


class Task:
    """``fn()`` run on ``scheduler`` when kicked; ``fn`` returns True when it has more to do."""

    __slots__ = ("fn", "scheduler", "_lock", "_scheduled", "_running", "_again", "running_thread", "_submit")

    def __init__(self, scheduler: Scheduler, fn: Callable[[], bool]) -> None:
        self.fn = fn
        self.scheduler = scheduler
        self._lock = threading.Lock()
        self._scheduled = False
        self._running = False
        self._again = False
        self.running_thread: threading.Thread | None = None  # the thread inside fn(), if any
        self._submit = scheduler.submit

    def kick(self) -> None:
        """Run soon (or once more, if running now)."""
        with self._lock:
            if self._running:
                self._again = True
                return
            if self._scheduled:
                return
            self._scheduled = True
        self._submit(self._run)

    def _run(self) -> None:
        with self._lock:
            self._scheduled = False
            self._running = True
            self._again = False
        self.running_thread = threading.current_thread()
        more = True
        try:
            more = self.fn()
        finally:
            self.running_thread = None
            with self._lock:
                self._running = False
                again = (more or self._again) and not self._scheduled
                if again:
                    self._scheduled = True
        if again:
            self._submit(self._run)

    def busy(self) -> bool:
        """Inside ``fn()`` on some thread now."""
        return self.running_thread is not None


class Mailbox:
    """Items handled one at a time, in order, by ``handle(item)`` on the scheduler."""

    def __init__(self, scheduler: Scheduler, handle: Callable[[Any], None], capacity: int) -> None:
        self.handle = handle
        self.capacity = capacity
        self.items: collections.deque[Any] = collections.deque()
        self.paused = False  # a handler waiting (a sink's retry) holds the items back
        self.task = Task(scheduler, self._drain)
        self._room: Callable[[], None] | None = None

    def post(self, item: Any) -> None:
        """Queue ``item`` (never blocks; see :meth:`full`)."""
        self.items.append(item)
        if not self.paused:
            self.task.kick()

    def full(self) -> bool:
        return len(self.items) >= self.capacity

    def wake_when_room(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, when the mailbox next has room (now, if it has)."""
        self._room = callback
        if not self.full():
            self._wake()

    def _wake(self) -> None:
        room, self._room = self._room, None
        if room is not None:
            room()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self.task.kick()

    def _drain(self) -> bool:
        items = self.items
        for _ in range(BUDGET):
            if self.paused or not items:
                break
            item = items.popleft()
            if self._room is not None and len(items) < self.capacity:
                self._wake()  # before the handler, which may block (a slow sink's write)
            self.handle(item)
        return bool(items) and not self.paused

    def __len__(self) -> int:
        return len(self.items)


__all__ = ["BUDGET", "Mailbox", "Task"]
