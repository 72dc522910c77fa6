"""The ``nop`` sink: takes every batch and drops it.

For measuring a rule without the cost of its output, and for rules kept only for their
status metrics. ``{"nop": {}}``; ``{"nop": {"log": true}}`` logs the size of each batch.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import pyarrow as pa

from plutino_contract.protocols import Context

from ._base import InProcessSink
from .options import Options

VERSION = "1.0.0"
_log = logging.getLogger("plutino.io.nop")


class NopSink(InProcessSink):
    def __init__(self, log: bool) -> None:
        self.log = log
        self.rows = 0
        self.batches = 0

    def write(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        self.batches += 1
        if self.log:
            _log.info("nop sink: dropped a batch of %d rows (%d rows so far)", batch.num_rows, self.rows)


class NopSinkPlugin:
    """Rule action ``{"nop": {}}``."""

    name = "nop"
    version = VERSION
    kind = "sink"
    builtin = True

    def create(self, config: Mapping[str, Any], context: Context) -> NopSink:
        opts = Options("nop sink", config, {"log"}, '{"nop": {"log": true}}')
        return NopSink(opts.flag("log", False))


__all__ = ["NopSink", "NopSinkPlugin"]
