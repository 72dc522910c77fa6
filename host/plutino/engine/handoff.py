"""The bounded mailboxes between a running rule's nodes, and what is counted on them.

A rule's nodes are numbered: 0 is the operators (fed by the source), 1+i is sink i (fed by the
operators). Each has a :class:`~.tasks.Mailbox` that its handler drains on the shared
scheduler, one item at a time, in order. A mailbox holds up to the rule's ``bufferLength``
items before its producer stops taking more in (the source reader asks :meth:`Handoffs.full`
and parks until there is room): backpressure, not unbounded memory, and no thread waits.

Every item put for a node is counted as *queued*, and as *done* once the node's handler has
finished with it: :meth:`Handoffs.wait_idle` waits for the two counts to meet, and a sink
whose counts meet is caught up (the operators may then write to it themselves, see
:mod:`.ops_runner`).

Rows that a stop keeps from their node are counted per node as *undelivered*: an item put or
handled after the stop, a batch dropped while it waited for a retry, and whatever was still
queued when the stop ended (:meth:`Handoffs.left_behind`). A stop never loses rows silently.
Their deliveries (:mod:`.delivery`) are never released, so a source that can replay them does.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import pyarrow as pa

from .scheduler import Scheduler
from .tasks import Mailbox

POLL_S = 0.1  # how long a thread of its own (a blocking source's reader) waits before looking at the stop flag
END = ("end",)  # the item that ends a bounded stream: the source's last, then each sink's


class Handoffs:
    """The operators' mailbox and one mailbox per sink, with the counts ``wait_idle`` reads."""

    def __init__(self, scheduler: Scheduler, ops_capacity: int, sink_capacities: list[int],
                 stop: threading.Event) -> None:
        self.scheduler = scheduler
        self.stop = stop
        self.capacities = [ops_capacity, *sink_capacities]
        nodes = len(self.capacities)
        self.boxes: list[Mailbox | None] = [None] * nodes
        self._idle = threading.Condition()
        # items queued to / finished by each node (wait_idle)
        self.queued = [0] * nodes
        self.done = [0] * nodes
        # rows a stop left behind, by node, and their deliveries (never released by the rule)
        self.undelivered = [0] * nodes
        self.abandoned: list[Any] = []

    def bind(self, node: int, handle: Callable[[Any], None]) -> Mailbox:
        """Give ``node`` its mailbox, drained by ``handle(item)``; ``handle`` must call
        :meth:`finished` once done with the item (at once, or later: a sink's retry)."""

        def guarded(item: Any) -> None:
            if self.stop.is_set():  # stopped: counted, not handled
                self.lost(node, rows_of(item), deliveries_of(item))
                self.finished(node)
                return
            handle(item)

        box = Mailbox(self.scheduler, guarded, self.capacities[node])
        self.boxes[node] = box
        return box

    def box(self, node: int) -> Mailbox:
        box = self.boxes[node]
        assert box is not None, f"node {node} has no mailbox"
        return box

    def put(self, node: int, item: Any) -> bool:
        """Queue ``item`` for ``node`` (0: the operators, 1+i: sink i); False when the rule
        stopped (the item's rows are counted undelivered)."""
        if self.stop.is_set():
            self.lost(node, rows_of(item), deliveries_of(item))
            return False
        with self._idle:
            self.queued[node] += 1
        self.box(node).post(item)
        return True

    def full(self, node: int) -> bool:
        box = self.boxes[node]
        return box is not None and box.full()

    def finished(self, node: int) -> None:
        """``node``'s handler is done with one item it got."""
        with self._idle:
            self.done[node] += 1
            self._idle.notify_all()

    def caught_up(self, node: int) -> bool:
        """Nothing is queued for ``node`` or being worked on by its handler."""
        return self.queued[node] == self.done[node]

    def backlog(self, node: int) -> int:
        box = self.boxes[node]
        return 0 if box is None else len(box)

    def lost(self, node: int, rows: int, deliveries: tuple[Any, ...] = ()) -> None:
        """``rows`` that ``node`` had taken will not be delivered: the rule stopped."""
        with self._idle:
            self.undelivered[node] += rows
            self.abandoned.extend(deliveries)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far was finished by its node (or the rule stopped);
        False on timeout."""

        def idle() -> bool:
            return self.queued == self.done or self.stop.is_set()

        with self._idle:
            return self._idle.wait_for(idle, timeout)

    def busy(self) -> list[int]:
        """The nodes whose handler is running on some thread right now."""
        return [n for n, box in enumerate(self.boxes) if box is not None and box.task.busy()]

    def left_behind(self) -> list[int]:
        """After the stop: empty the mailboxes, counting their rows as undelivered; the
        undelivered rows by node."""
        for node, box in enumerate(self.boxes):
            while box is not None and box.items:
                try:
                    item = box.items.popleft()
                except IndexError:
                    break
                self.lost(node, rows_of(item), deliveries_of(item))
        return list(self.undelivered)


def rows_of(item: Any) -> int:
    """Rows in a queued item: a sink's (batch, deliveries), or the operators' ("data", rows, ...)."""
    if isinstance(item, tuple) and item:
        first = item[0]
        if isinstance(first, (pa.RecordBatch, pa.Table)):
            return first.num_rows
        if first == "data":
            return int(item[1].num_rows)
    return 0


def deliveries_of(item: Any) -> tuple[Any, ...]:
    """The deliveries a queued item holds (:mod:`.delivery`)."""
    if isinstance(item, tuple) and item:
        if isinstance(item[0], (pa.RecordBatch, pa.Table)):
            return item[1]
        if item[0] == "data" and len(item) == 4:
            return item[3]
    return ()


__all__ = ["END", "POLL_S", "Handoffs", "deliveries_of", "rows_of"]
