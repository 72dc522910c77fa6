"""One sink of a running rule: its thread, its writes and their retries.

The sink's thread opens it, then writes every batch queued for it, in order, until the end of
the stream (then it flushes) or the stop. A write that fails with an ``OSError`` (a lost
connection, a full disk) is retried ``retryCount`` times, ``retryInterval`` apart; any other
error, or the last retry, drops that batch and counts the error in the sink's metrics. A stop
during a retry's wait counts the batch as undelivered.

A sink that is caught up (nothing queued, its thread idle) and quick (its writes take under
``INLINE_WRITE_S`` on average; once quick, it stays so until the average passes twice that,
so one write slowed by a busy core does not send the next batches through a hand-off) may be
written by the operators' thread instead
(:meth:`SinkWriter.can_inline`, used by :mod:`.ops_runner`): a hand-off between threads costs
several context switches per batch on a busy core, more than such a write.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import pyarrow as pa

from .handoff import END, Handoffs
from .instances import StatusPoll, failed, quietly, status_of
from .metrics import NodeMetrics
from .rules import Action

INLINE_WRITE_S = 20e-6  # a sink whose writes take less (on average) is written on the operators' thread
_AVERAGE_WEIGHT = 0.25  # of the newest write in the moving average


class SinkWriter:
    """Sink ``index`` (node ``1 + index`` of the hand-offs) of rule ``rule_id``."""

    def __init__(
        self,
        rule_id: str,
        index: int,
        sink: Any,
        action: Action,
        metrics: NodeMetrics,
        handoffs: Handoffs,
        stop: threading.Event,
        on_end: Callable[[], None],
    ) -> None:
        self.rule_id = rule_id
        self.index = index
        self.node = 1 + index
        self.sink = sink
        self.action = action
        self.metrics = metrics
        self.handoffs = handoffs
        self.stop = stop
        self.on_end = on_end  # called once the end of the stream was flushed
        self.quick = False  # its writes take < INLINE_WRITE_S on average (see above)
        self._average_s: float | None = None
        self._status = StatusPoll(sink)

    def can_inline(self) -> bool:
        """Quick and caught up, and the rule is running: the operators may write it themselves."""
        return self.quick and self.handoffs.caught_up(self.node) and not self.stop.is_set()

    def run(self) -> None:
        """The sink's thread."""
        sink, m, handoffs, node = self.sink, self.metrics, self.handoffs, self.node
        q = handoffs.queues[node]
        try:
            sink.open()
            m.connection_status = status_of(sink)
        except Exception as exc:
            failed(self.rule_id, m, exc, "open")
            m.connection_status = "disconnected"
        while True:
            item = handoffs.get(node)
            if item is None:
                return
            if item is END:
                quietly(sink.flush)
                handoffs.finished(node)
                self.on_end()
                return
            m.buffer_length = q.qsize()
            self.deliver(item)
            handoffs.finished(node)  # last: from here on the operators' thread may write inline

    def deliver(self, batch: pa.RecordBatch) -> None:
        """Write ``batch`` (retrying as the action says), timed in the sink's metrics."""
        m = self.metrics
        started = m.begin(batch.num_rows)
        if self._write(batch):
            m.end(started, batch.num_rows)
        took = time.perf_counter() - started
        average = took if self._average_s is None else self._average_s + (took - self._average_s) * _AVERAGE_WEIGHT
        self._average_s = average
        self.quick = average < (2 * INLINE_WRITE_S if self.quick else INLINE_WRITE_S)
        m.connection_status = self._status()

    def _write(self, batch: pa.RecordBatch) -> bool:
        action, m = self.action, self.metrics
        attempts = 1 + action.retry_count
        for attempt in range(attempts):
            try:
                self.sink.write(batch)
                return True
            except OSError as exc:
                if attempt + 1 < attempts:
                    if self.stop.wait(action.retry_interval_ms / 1000):
                        # the rule stopped while this batch waited for its retry
                        self.handoffs.lost(self.node, batch.num_rows)
                        return False
                    m.add("retries_total")
                    continue
                failed(self.rule_id, m, exc, "write")
                return False
            except Exception as exc:
                failed(self.rule_id, m, exc, "write")
                return False
        return False


__all__ = ["INLINE_WRITE_S", "SinkWriter"]
