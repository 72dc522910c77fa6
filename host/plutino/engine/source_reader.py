"""The source thread of a running rule: the batches taken in, decoded and handed on.

The thread opens the source (retrying with a growing backoff while it fails), then pulls
batches with ``source.next(SOURCE_TIMEOUT_S)``, decodes them into the stream's rows and stamps
their arrival time, and hands them to the operators (:meth:`.ops_runner.OpsRunner.submit`:
queued, or run right here). A ``next`` error is counted and retried; a payload that does not
decode is counted and its batch's other payloads go on. The source's ``EndOfStream`` (a bounded
stream) is handed on as the end, which flushes the windows and then the sinks.

A stop first stops the source taking data in (``stop_source``); what it already took goes on.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import pyarrow as pa
from plutino_contract.protocols import EndOfStream

from .clock import Clock
from .decode import Decoder
from .handoff import END, POLL_S
from .instances import StatusPoll, failed, status_of
from .metrics import NodeMetrics

SOURCE_TIMEOUT_S = 0.1  # the timeout passed to source.next()


class SourceReader:
    """Reads ``source`` for rule ``rule_id`` until the stop, or the end of its stream."""

    def __init__(
        self,
        rule_id: str,
        source: Any,
        decoder: Decoder,
        metrics: NodeMetrics,
        clock: Clock,
        submit: Callable[[Any], bool],
        backlog: Callable[[], int],
        stop: threading.Event,
        stop_source: threading.Event,
    ) -> None:
        self.rule_id = rule_id
        self.source = source
        self.decoder = decoder
        self.metrics = metrics
        self.clock = clock
        self.submit = submit  # hands an item to the operators; False once the rule stopped
        self.backlog = backlog  # items waiting for the operators (the source's buffer_length)
        self.stop = stop
        self.stop_source = stop_source

    def stopping(self) -> bool:
        return self.stop_source.is_set() or self.stop.is_set()

    def run(self) -> None:
        """The source thread."""
        m = self.metrics
        src = self.source
        backoff = 0.1
        while not self.stopping():
            try:
                src.open()
                break
            except Exception as exc:
                failed(self.rule_id, m, exc, "open")
                m.connection_status = "disconnected"
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        poll = StatusPoll(src)
        while not self.stopping():
            try:
                batch = src.next(SOURCE_TIMEOUT_S)
            except EndOfStream:
                m.connection_status = status_of(src)
                self.submit(END)
                return
            except Exception as exc:
                failed(self.rule_id, m, exc, "next")
                self.stop.wait(POLL_S)
                continue
            m.connection_status = poll()
            if batch is None:
                continue
            if isinstance(batch, pa.Table):
                batch = batch.combine_chunks().to_batches()[0] if batch.num_rows else None
                if batch is None:
                    continue
            started = m.begin(batch.num_rows)
            try:
                rows = self.decoder(batch)
            except Exception as exc:
                failed(self.rule_id, m, exc, "decode")
                continue
            m.process_latency_us = int((time.perf_counter() - started) * 1_000_000)
            if rows.num_rows == 0:
                continue
            arrival = self.clock.now_ms()
            m.buffer_length = self.backlog()
            n = rows.num_rows
            if not self.submit(("data", rows, arrival)):
                return
            m.records_out += n
            del batch, rows  # freed now, not when the next batch arrives: its memory is reused hot


__all__ = ["SOURCE_TIMEOUT_S", "SourceReader"]
