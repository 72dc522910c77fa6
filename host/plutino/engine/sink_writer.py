"""One sink of a running rule: its mailbox, its writes and their retries.

The sink's mailbox (node ``1 + index`` of :mod:`.handoff`) is drained on the scheduler: the
first turn opens the sink, then every batch queued for it is written, in order, until the end
of the stream (then it flushes) or the stop. A write that fails with an ``OSError`` (a lost
connection, a full disk) is retried ``retryCount`` times, ``retryInterval`` apart: the mailbox
pauses and a timer resumes it, so a waiting sink holds no thread. Any other error, or the
last retry, drops that batch and counts the error in the sink's metrics. A stop during a
retry's wait counts the batch as undelivered.

A sink that buffers (``periodic_flush``: a native sink with a ``flush`` callback) is flushed
through its mailbox ``flushInterval`` ms (default 1000) after a write, so a row waits at most
that long in the plugin; nothing happens while nothing is written, and no timer waits for an
idle sink. ``flushInterval: 0`` leaves only the flushes at the end of the stream and at the
stop (:meth:`~.runtime.RuleRuntime.stop`). A failed flush is counted in the sink's metrics and
tried again an interval later.

A sink that is caught up (nothing queued, its handler idle) and quick (its writes take under
``INLINE_WRITE_S`` on average; once quick, it stays so until the average passes twice that,
so one write slowed by a busy core does not send the next batches through a hand-off) may be
written by the operators instead (:meth:`SinkWriter.can_inline`, used by :mod:`.ops_runner`).

Each batch comes with its deliveries (:mod:`.delivery`): released once the batch is written,
or dropped after its retries; never when the stop keeps it from the sink.

With the rule option ``sendError`` (eKuiper's), a runtime error of the rule reaches the sink
as a row ``{"error": "..."}`` (:meth:`SinkWriter.post_error`), queued behind what was queued.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import pyarrow as pa

from .delivery import Deliveries, hold_all, release_all
from .handoff import END, Handoffs
from .instances import StatusPoll, failed, quietly, status_of
from .metrics import NodeMetrics
from .rules import Action

INLINE_WRITE_S = 20e-6  # a sink whose writes take less (on average) is written by the operators
_AVERAGE_WEIGHT = 0.25  # of the newest write in the moving average
OPEN = ("open",)  # the first item of a sink's mailbox
FLUSH = ("flush",)  # a periodic flush, queued behind the batches before it
_DONE, _RETRY, _FAILED, _HELD = 0, 1, 2, 3


def error_batch(message: str) -> pa.RecordBatch:
    """The row a sink gets for a rule's runtime error: ``{"error": message}``."""
    return pa.RecordBatch.from_arrays([pa.array([message], pa.string())], names=["error"])


class ErrorSender:
    """sendError: a rule's runtime errors to every sink of the rule, as rows ``{"error": ...}``."""

    def __init__(self) -> None:
        self.writers: list[SinkWriter] = []  # set by the rule's start

    def send(self, message: str) -> None:
        batch = error_batch(message)
        for w in self.writers:
            w.post_error(batch)

    def decode_hook(self, counted: Callable[[str], None]) -> Callable[[str], None]:
        """The per-payload decode error callback: ``counted`` as before, and sent."""
        def hook(message: str) -> None:
            counted(message)
            self.send(f"decode: {message}")

        return hook

    def reporting(self, decoder: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``decoder``, sending the error of a batch that does not decode at all."""
        def decode(batch: Any) -> Any:
            try:
                return decoder(batch)
            except Exception as exc:
                self.send(f"decode: {exc}")
                raise

        return decode


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
        self._retry: tuple[Any, pa.RecordBatch, Deliveries] | None = None  # while a retry waits
        self._lock = threading.Lock()
        every = action.flush_interval_ms / 1000
        self._flush_every = every if every > 0 and getattr(sink, "periodic_flush", False) else 0.0
        self._flush_timer: Any = None  # the flush due after the last write, while it waits
        self.box = handoffs.bind(self.node, self.handle)
        use_timers = getattr(sink, "use_timers", None)  # a resend cache (resendInterval) waits on our timers
        if use_timers is not None:
            use_timers(handoffs.scheduler.call_later)
        # a resend cache keeps a cached batch's deliveries until it is resent (at-least-once)
        self._holding: Callable[[pa.RecordBatch, Callable[[], None]], bool] | None = getattr(
            sink, "write_holding", None)

    def start(self) -> None:
        """Open the sink in its mailbox's first turn."""
        self.handoffs.put(self.node, OPEN)

    def post_error(self, batch: pa.RecordBatch) -> None:
        """Queue an error row (:func:`error_batch`) for the sink, behind what is queued."""
        self.handoffs.put(self.node, (batch, ()))

    def can_inline(self) -> bool:
        """Quick and caught up, and the rule is running: the operators may write it themselves."""
        return self.quick and self.handoffs.caught_up(self.node) and not self.stop.is_set()

    # -- the mailbox ------------------------------------------------------------------------
    def handle(self, item: Any) -> None:
        if item is OPEN:
            self._open()
            self.handoffs.finished(self.node)
            return
        if item is END:
            quietly(self.sink.flush)
            self.handoffs.finished(self.node)
            self.on_end()
            return
        if item is FLUSH:
            self._flush()
            self.handoffs.finished(self.node)
            return
        batch, deliveries = item
        self.metrics.buffer_length = len(self.box)
        self._attempt(batch, deliveries, 0, self.metrics.begin(batch.num_rows))

    def _open(self) -> None:
        m = self.metrics
        try:
            self.sink.open()
            m.connection_status = status_of(self.sink)
        except Exception as exc:
            failed(self.rule_id, m, exc, "open")
            m.connection_status = "disconnected"

    def _attempt(self, batch: pa.RecordBatch, deliveries: Deliveries, attempt: int, started: float) -> None:
        outcome = self._write(batch, attempt >= self.action.retry_count, deliveries)
        if outcome == _RETRY:
            self.box.pause()

            def again() -> None:
                with self._lock:
                    waiting, self._retry = self._retry, None
                if waiting is None:  # the stop took it
                    return
                self.metrics.add("retries_total")
                self._attempt(batch, deliveries, attempt + 1, started)

            with self._lock:
                self._retry = (self.box.task.scheduler.call_later(self.action.retry_interval_ms / 1000, again), batch,
                               deliveries)
            if self.stop.is_set():
                self.abandon_retry()
            return
        self._written(batch, outcome in (_DONE, _HELD), started)
        if outcome != _HELD:  # held: the resend cache releases them once the batch is resent
            release_all(deliveries)
        self.handoffs.finished(self.node)  # last: from here on the operators may write inline
        if self.box.paused:
            self.box.resume()

    def abandon_retry(self) -> None:
        """The stop: a batch waiting for its retry is counted undelivered; a flush waiting
        for its time is dropped (the stop flushes)."""
        with self._lock:
            waiting, self._retry = self._retry, None
            timer, self._flush_timer = self._flush_timer, None
        if timer is not None:
            timer.cancel()
        if waiting is not None:
            waiting[0].cancel()
            self.handoffs.lost(self.node, waiting[1].num_rows, waiting[2])
            self.handoffs.finished(self.node)

    # -- written by the operators ------------------------------------------------------------------
    def deliver(self, batch: pa.RecordBatch, deliveries: Deliveries) -> None:
        """Write ``batch`` right here (the operators' turn); one that should be retried goes
        through the mailbox, which waits for its retries."""
        started = self.metrics.begin(batch.num_rows)
        holding = self._holding is not None and bool(deliveries)
        if holding:
            hold_all(deliveries)  # ours, for the resend cache to keep or for the mailbox
        outcome = self._write(batch, self.action.retry_count == 0, deliveries if holding else ())
        if outcome == _RETRY:
            self.metrics.records_in -= batch.num_rows  # counted again by the mailbox
            if not holding:
                hold_all(deliveries)
            self.handoffs.put(self.node, (batch, deliveries))
            return
        if holding and outcome != _HELD:
            release_all(deliveries)
        self._written(batch, outcome in (_DONE, _HELD), started)

    # -- periodic flushes ------------------------------------------------------------------------
    def _flush_later(self) -> None:
        """Have the sink flushed an interval from now, unless a flush is already due."""
        with self._lock:
            if self._flush_timer is None and not self.stop.is_set():
                self._flush_timer = self.handoffs.scheduler.call_later(self._flush_every, self._flush_due)

    def _flush_due(self) -> None:
        with self._lock:
            if self._flush_timer is None:  # the stop took it
                return
            self._flush_timer = None
        self.handoffs.put(self.node, FLUSH)

    def _flush(self) -> None:
        try:
            self.sink.flush()
        except Exception as exc:
            failed(self.rule_id, self.metrics, exc, "flush")
            self._flush_later()  # what it holds is tried again

    def _written(self, batch: pa.RecordBatch, ok: bool, started: float) -> None:
        m = self.metrics
        if ok:
            m.end(started, batch.num_rows)
            if self._flush_every and self._flush_timer is None:  # (read without the lock: a hint)
                self._flush_later()
        took = time.perf_counter() - started
        average = took if self._average_s is None else self._average_s + (took - self._average_s) * _AVERAGE_WEIGHT
        self._average_s = average
        self.quick = average < (2 * INLINE_WRITE_S if self.quick else INLINE_WRITE_S)
        m.connection_status = self._status()

    def _write(self, batch: pa.RecordBatch, last: bool, deliveries: Deliveries = ()) -> int:
        """Write one batch. _HELD: a resend cache took it with its deliveries, which it
        releases once the batch is resent (its ``write_holding``)."""
        try:
            if deliveries and self._holding is not None:
                return _HELD if self._holding(batch, lambda: release_all(deliveries)) else _DONE
            self.sink.write(batch)
            return _DONE
        except OSError as exc:
            if not last and not self.stop.is_set():
                return _RETRY
            failed(self.rule_id, self.metrics, exc, "write")
        except Exception as exc:
            failed(self.rule_id, self.metrics, exc, "write")
        return _FAILED


__all__ = ["ErrorSender", "error_batch", "FLUSH", "INLINE_WRITE_S", "OPEN", "SinkWriter"]
