"""Per-operator metrics, named and shaped like eKuiper's ``GET /rules/{id}/status``.

Every node of a running rule (the source, each operator, each sink) has one
:class:`NodeMetrics`. The rule status flattens them into keys such as
``source_demo_0_records_in_total`` or ``op_2_project_0_process_latency_us``, as eKuiper does,
so dashboards written for eKuiper read Plutino's too. Counts are rows, not batches.
"""

from __future__ import annotations

import threading
import time
from typing import Any


class NodeMetrics:
    """Counters of one node. Written by the node's own thread; read by anyone."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.records_in = 0
        self.records_out = 0
        self.exceptions = 0
        self.last_exception = ""
        self.last_exception_time = 0  # ms since the epoch, wall clock
        self.process_latency_us = 0  # of the last batch
        self.last_invocation = 0  # ms since the epoch, wall clock
        self.connection_status: str | None = None
        self.buffer_length = 0  # rows or batches waiting in front of this node
        self.extra: dict[str, int] = {}  # node-specific counters (late rows, plugin calls)
        self._lock = threading.Lock()

    def begin(self, rows: int) -> float:
        self.records_in += rows
        self.last_invocation = int(time.time() * 1000)
        return time.perf_counter()

    def end(self, started: float, rows_out: int) -> None:
        self.process_latency_us = int((time.perf_counter() - started) * 1_000_000)
        self.records_out += rows_out

    def error(self, exc: BaseException | str) -> None:
        with self._lock:
            self.exceptions += 1
            self.last_exception = exc if isinstance(exc, str) else (str(exc) or type(exc).__name__)
            self.last_exception_time = int(time.time() * 1000)

    def add(self, key: str, n: int = 1) -> None:
        self.extra[key] = self.extra.get(key, 0) + n

    def flat(self) -> dict[str, Any]:
        p = self.name
        out: dict[str, Any] = {
            f"{p}_records_in_total": self.records_in,
            f"{p}_records_out_total": self.records_out,
            f"{p}_process_latency_us": self.process_latency_us,
            f"{p}_buffer_length": self.buffer_length,
            f"{p}_last_invocation": self.last_invocation,
            f"{p}_exceptions_total": self.exceptions,
            f"{p}_last_exception": self.last_exception,
            f"{p}_last_exception_time": self.last_exception_time,
        }
        if self.connection_status is not None:
            out[f"{p}_connection_status"] = self.connection_status
        for key, value in sorted(self.extra.items()):
            out[f"{p}_{key}"] = value
        return out


__all__ = ["NodeMetrics"]
