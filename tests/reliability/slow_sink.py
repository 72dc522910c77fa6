"""A deliberately slow Python sink plugin (registered like a native one) for the load tests.

``{"slow": {"sleep_ms": 10}}``: every write sleeps ``sleep_ms`` and then counts the batch's
rows, so the sink is the slowest stage of the rule and backpressure has to hold the source
back. ``SlowSinkPlugin.rows``, ``.batches`` and ``.data_bytes`` add up every instance's writes.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Mapping

import pyarrow as pa

from plutino_contract.protocols import Context


class SlowSink:
    def __init__(self, plugin: "SlowSinkPlugin", sleep_s: float) -> None:
        self.plugin = plugin
        self.sleep_s = sleep_s

    def open(self) -> None:
        pass

    def write(self, batch: pa.RecordBatch) -> None:
        time.sleep(self.sleep_s)
        with self.plugin.lock:
            self.plugin.rows += batch.num_rows
            self.plugin.batches += 1
            self.plugin.data_bytes += batch.nbytes

    def flush(self) -> None:
        pass

    def status(self) -> str:
        return "connected"

    def close(self) -> None:
        pass


class SlowSinkPlugin:
    name = "slow"
    version = "1.0.0"
    kind = "sink"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows = 0
        self.batches = 0
        self.data_bytes = 0  # Arrow bytes of every batch written: what buffering it all would take

    def create(self, config: Mapping[str, Any], context: Context) -> SlowSink:
        unknown = set(config) - {"sleep_ms"}
        if unknown:
            raise ValueError(f"slow sink: unknown property {sorted(unknown)[0]!r}; it has sleep_ms")
        return SlowSink(self, float(config.get("sleep_ms", 10)) / 1000)
