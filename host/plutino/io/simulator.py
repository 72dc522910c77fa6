"""The ``simulator`` source: configured rows, replayed at an interval (eKuiper's simulator).

For demos and tests without a device. In ``etc/sources/simulator.yaml`` (or the stream's
properties)::

    default:
      interval: 1000          # ms between batches; 0: as fast as the rule takes them
      loop: true              # start again after the last row; false: the stream ends
      batchSize: 1            # rows per batch
      data:
        - {temperature: 21.5, humidity: 40}
        - {temperature: 22.0, humidity: 42}

``CREATE STREAM sim () WITH (TYPE="simulator")``. The column types are inferred once from all
the rows together, so every batch has the same schema.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Mapping

import pyarrow as pa

from plutino_contract.protocols import ConnectionStatus, Context, EndOfStream

from .alarms import call_at
from .formats import rows_to_batch
from .options import RESERVED_SOURCE_KEYS, Options

VERSION = "1.0.0"


class SimulatorSource:
    def __init__(self, rows: pa.RecordBatch, interval_ms: int, loop: bool, batch_size: int) -> None:
        self.rows = rows
        self.interval = interval_ms / 1000
        self.loop = loop
        self.batch_size = batch_size
        self._pos = 0
        self._due = 0.0
        self._stop = threading.Event()
        self._status: ConnectionStatus = "connecting"
        self._ready: Callable[[], None] | None = None

    def schema(self) -> pa.Schema:
        return self.rows.schema

    def open(self) -> None:
        self._status = "connected"
        self._due = time.monotonic()

    def set_ready(self, callback: Callable[[], None]) -> None:
        """Read on the engine's scheduler: ``callback()`` when the next batch is due (from the
        process's one alarm thread, :mod:`.alarms`), instead of a thread waiting in next()."""
        self._ready = callback
        call_at(self._due, self._wake)

    def _wake(self) -> None:
        ready = self._ready
        if ready is not None and not self._stop.is_set():
            ready()

    def next(self, timeout: float) -> pa.RecordBatch | None:
        if self._pos >= self.rows.num_rows:
            if not self.loop:
                raise EndOfStream("simulator")
            self._pos = 0
        wait = self._due - time.monotonic()
        if wait > 0:
            if self._stop.wait(min(wait, timeout)) or wait > timeout:
                return None
        batch = self.rows.slice(self._pos, self.batch_size)
        self._pos += batch.num_rows
        self._due = max(self._due + self.interval, time.monotonic()) if self.interval else 0.0
        if self._ready is not None and self.interval:
            call_at(self._due, self._wake)  # without an interval, the reader reads on by itself
        return batch

    def status(self) -> ConnectionStatus:
        return self._status

    def close(self) -> None:
        self._ready = None
        self._stop.set()
        self._status = "disconnected"


class SimulatorSourcePlugin:
    """``CREATE STREAM s () WITH (TYPE="simulator")`` with ``data`` in simulator.yaml."""

    name = "simulator"
    version = VERSION
    kind = "source"
    builtin = True

    def create(self, config: Mapping[str, Any], context: Context) -> SimulatorSource:
        what = "simulator source"
        opts = Options(
            what,
            config,
            {"data", "interval", "loop", "batchSize"},
            '{"interval": 1000, "loop": true, "data": [{"t": 21.5}]}',
            ignore=RESERVED_SOURCE_KEYS,
        )
        data = opts.items("data")
        if not data:
            raise ValueError(
                'simulator source: no rows; give "data" a list of rows, e.g. '
                'data: [{"temperature": 21.5}, {"temperature": 22.0}] in simulator.yaml'
            )
        bad = next((i for i, row in enumerate(data) if not isinstance(row, Mapping)), None)
        if bad is not None:
            raise ValueError(f"simulator source: data[{bad}] is {data[bad]!r}, not an object of column values")
        try:
            rows = rows_to_batch([dict(r) for r in data], None)
        except ValueError as exc:
            raise ValueError(f"simulator source: {exc}") from None
        return SimulatorSource(
            rows,
            opts.integer("interval", 1000, minimum=0),
            opts.flag("loop", True),
            opts.integer("batchSize", 1, minimum=1),
        )


__all__ = ["SimulatorSource", "SimulatorSourcePlugin"]
