"""The bounded queues between a running rule's threads, and what is counted on them.

A rule's nodes are numbered: 0 is the operators (fed by the source), 1+i is sink i (fed by the
operators). Each has a bounded queue, so a slow node holds back the one in front of it
(backpressure, not unbounded memory). Every item put for a node is counted as *queued*, and as
*done* once that node's thread has finished with it: :meth:`Handoffs.wait_idle` waits for the
two counts to meet, and a sink whose counts meet is caught up (the operators may then write
to it themselves, see :mod:`.ops_runner`).

Rows that a stop keeps from their node are counted per node as *undelivered*: a put the stop
interrupted, a batch dropped while it waited for a retry, and whatever was still queued after
the threads stopped (:meth:`Handoffs.left_behind`). A stop never loses rows silently.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

import pyarrow as pa

POLL_S = 0.1  # how long a thread waits before looking at the stop flag again
END = ("end",)  # the item that ends a bounded stream: the source's last, then each sink's


class Handoffs:
    """The operators' queue and one queue per sink, with the counts ``wait_idle`` reads."""

    def __init__(self, ops_capacity: int, sink_capacities: list[int], stop: threading.Event) -> None:
        self.stop = stop
        self.ops: queue.Queue[Any] = queue.Queue(ops_capacity)
        self.sinks: list[queue.Queue[Any]] = [queue.Queue(c) for c in sink_capacities]
        self.queues = [self.ops, *self.sinks]  # by node
        nodes = len(self.queues)
        self._idle = threading.Condition()
        # items queued to / finished by the operator thread and each sink thread (wait_idle)
        self.queued = [0] * nodes
        self.done = [0] * nodes
        # rows a stop left behind, by node
        self.undelivered = [0] * nodes

    def put(self, node: int, item: Any) -> bool:
        """Put ``item`` for ``node`` (0: the operators, 1+i: sink i), waiting while its queue is
        full; False when the rule stopped meanwhile (the item's rows are counted undelivered)."""
        q = self.queues[node]
        with self._idle:
            self.queued[node] += 1
        while not self.stop.is_set():
            try:
                q.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        with self._idle:
            self.queued[node] -= 1
            self.undelivered[node] += rows_of(item)
            self._idle.notify_all()
        return False

    def get(self, node: int) -> Any:
        """The next item for ``node``, waiting for one; None once the rule stopped."""
        q = self.queues[node]
        while not self.stop.is_set():
            try:
                return q.get(timeout=POLL_S)
            except queue.Empty:
                continue
        return None

    def finished(self, node: int) -> None:
        """``node``'s thread is done with one item it got."""
        with self._idle:
            self.done[node] += 1
            self._idle.notify_all()

    def caught_up(self, node: int) -> bool:
        """Nothing is queued for ``node`` or being worked on by its thread."""
        return self.queued[node] == self.done[node]

    def lost(self, node: int, rows: int) -> None:
        """``rows`` that ``node`` had taken will not be delivered: the rule stopped."""
        with self._idle:
            self.undelivered[node] += rows

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far was finished by its node (or the rule stopped);
        False on timeout."""

        def idle() -> bool:
            return self.queued == self.done or self.stop.is_set()

        with self._idle:
            return self._idle.wait_for(idle, timeout)

    def left_behind(self) -> list[int]:
        """After the threads stopped: empty the queues, counting their rows as undelivered;
        the undelivered rows by node."""
        for node, q in enumerate(self.queues):
            while True:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                self.undelivered[node] += rows_of(item)
        return list(self.undelivered)


def rows_of(item: Any) -> int:
    """Rows in a queued item: a sink's batch, or the operators' ("data", rows, arrival)."""
    if isinstance(item, (pa.RecordBatch, pa.Table)):
        return item.num_rows
    if isinstance(item, tuple) and len(item) == 3 and item[0] == "data":
        return int(item[1].num_rows)
    return 0


__all__ = ["END", "POLL_S", "Handoffs", "rows_of"]
