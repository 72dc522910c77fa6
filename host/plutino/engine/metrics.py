"""Per-operator metrics, named and shaped like eKuiper's ``GET /rules/{id}/status``.

Every node of a running rule (the source, each operator, each sink) has one
:class:`NodeMetrics`. The rule status flattens them into keys such as
``source_demo_0_records_in_total`` or ``op_2_project_0_process_latency_us``, as eKuiper does,
so dashboards written for eKuiper read Plutino's too. The meanings are eKuiper's (docs/rest.md,
"Rule status"):

- a source's and an operator's ``records_in_total``/``records_out_total`` count rows;
- a sink's count *messages*, as eKuiper's sink does (:class:`SinkMetrics`): with
  ``sendSingle`` (or ``format`` binary) one message per row, otherwise one per batch written.
  Its rows are kept under ``rows_in_total``/``rows_out_total`` (Plutino's);
- ``messages_processed_total`` (eKuiper 2.x): the rows that went into the node;
- ``last_invocation`` and ``last_exception_time``: ms since the epoch (0: never), as eKuiper 2.x;
- ``connection_status`` of a source or sink: 1 connected, 0 connecting, -1 disconnected, with
  eKuiper 2.x's ``connection_last_connected_time``, ``_last_disconnected_time``,
  ``_last_disconnected_message`` and ``_last_try_time``; the word ("connected", ...) stays under
  ``connection_state`` (Plutino's).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Mapping

#: eKuiper's number for each connection state.
CONNECTION_CODES = {"connected": 1, "connecting": 0, "disconnected": -1}


def _now_ms() -> int:
    return int(time.time() * 1000)


class NodeMetrics:
    """Counters of one node. Written by the node's own thread; read by anyone."""

    kind = "node"

    def __init__(self, name: str) -> None:
        self.name = name
        self.records_in = 0
        self.records_out = 0
        self.exceptions = 0
        self.last_exception = ""
        self.last_exception_time = 0  # ms since the epoch, wall clock
        self.process_latency_us = 0  # of the last batch
        self.last_invocation = 0  # ms since the epoch, wall clock
        self._connection: str | None = None
        self._connection_times = [0, 0, 0]  # last connected, last disconnected, last try (ms)
        self.buffer_length = 0  # rows or batches waiting in front of this node
        self.extra: dict[str, int] = {}  # node-specific counters (late rows, plugin calls)
        self._lock = threading.Lock()

    @property
    def connection_status(self) -> str | None:
        """The node's connection state as Plutino words it: "connected", "connecting",
        "disconnected" (None: the node has no connection)."""
        return self._connection

    @connection_status.setter
    def connection_status(self, value: str | None) -> None:
        if value != self._connection and value in CONNECTION_CODES:
            self._connection_times[("connected", "disconnected", "connecting").index(value)] = _now_ms()
        self._connection = value

    def begin(self, rows: int) -> float:
        self.records_in += rows
        self.last_invocation = _now_ms()
        return time.perf_counter()

    def end(self, started: float, rows_out: int) -> None:
        self.process_latency_us = int((time.perf_counter() - started) * 1_000_000)
        self.records_out += rows_out

    def error(self, exc: BaseException | str) -> None:
        with self._lock:
            self.exceptions += 1
            self.last_exception = exc if isinstance(exc, str) else (str(exc) or type(exc).__name__)
            self.last_exception_time = _now_ms()

    def add(self, key: str, n: int = 1) -> None:
        self.extra[key] = self.extra.get(key, 0) + n

    def ekuiper_counts(self) -> tuple[int, int]:
        """(records_in_total, records_out_total) in eKuiper's meaning: rows here."""
        return self.records_in, self.records_out

    def rows_in(self) -> int:
        return self.records_in

    def flat(self) -> dict[str, Any]:
        p = self.name
        records_in, records_out = self.ekuiper_counts()
        out: dict[str, Any] = {
            f"{p}_records_in_total": records_in,
            f"{p}_records_out_total": records_out,
            f"{p}_messages_processed_total": self.rows_in(),
            f"{p}_process_latency_us": self.process_latency_us,
            f"{p}_buffer_length": self.buffer_length,
            f"{p}_last_invocation": self.last_invocation,
            f"{p}_exceptions_total": self.exceptions,
            f"{p}_last_exception": self.last_exception,
            f"{p}_last_exception_time": self.last_exception_time,
        }
        state = self._connection
        if state is not None:
            connected, disconnected, tried = self._connection_times
            out[f"{p}_connection_status"] = CONNECTION_CODES.get(state, -1)
            out[f"{p}_connection_last_connected_time"] = connected
            out[f"{p}_connection_last_disconnected_time"] = disconnected
            out[f"{p}_connection_last_disconnected_message"] = self.last_exception if disconnected else ""
            out[f"{p}_connection_last_try_time"] = tried
            out[f"{p}_connection_state"] = state
        self._flat_extra(out)
        for key, value in sorted(self.extra.items()):
            out[f"{p}_{key}"] = value
        return out

    def _flat_extra(self, out: dict[str, Any]) -> None:
        """Node-specific keys (a sink's rows)."""


class SinkMetrics(NodeMetrics):
    """A sink's counters. eKuiper's sink counts the messages it is given and sends; Plutino's
    writer counts rows (``begin(rows)``, ``end(started, rows)``), so each call is also counted
    here as messages: ``rows`` of them when every row is a message of its own (``sendSingle``,
    ``format`` binary), else one (the batch is one message)."""

    kind = "sink"

    def __init__(self, name: str, message_per_row: bool = False) -> None:
        self.message_per_row = message_per_row
        self.messages_in = 0
        self.messages_out = 0
        self._rows_in = 0
        super().__init__(name)

    @classmethod
    def for_config(cls, name: str, config: Mapping[str, Any]) -> "SinkMetrics":
        """The metrics of a sink created with ``config`` (its action's properties)."""
        from plutino.io.sink_props import SinkProps

        try:
            props, _ = SinkProps.split(name, config)
        except (ValueError, TypeError):  # refused when the sink is created, with the reason
            return cls(name)
        return cls(name, props.send_single or (props.format == "binary" and props.template is None))

    def _messages(self, rows: int) -> int:
        return rows if self.message_per_row else (1 if rows else 0)

    @property
    def records_in(self) -> int:
        """Rows in (Plutino's figure; the writer adjusts it when a batch goes back to its queue)."""
        return self._rows_in

    @records_in.setter
    def records_in(self, value: int) -> None:
        taken_back = self._rows_in - value
        if taken_back > 0:  # the writer un-counts a batch it queues for a retry (counted again then)
            self.messages_in -= self._messages(taken_back)
        self._rows_in = value

    def begin(self, rows: int) -> float:
        self.messages_in += self._messages(rows)
        return super().begin(rows)

    def end(self, started: float, rows_out: int) -> None:
        self.messages_out += self._messages(rows_out)
        super().end(started, rows_out)

    def ekuiper_counts(self) -> tuple[int, int]:
        return self.messages_in, self.messages_out

    def _flat_extra(self, out: dict[str, Any]) -> None:
        out[f"{self.name}_rows_in_total"] = self._rows_in
        out[f"{self.name}_rows_out_total"] = self.records_out


__all__ = ["CONNECTION_CODES", "NodeMetrics", "SinkMetrics"]
