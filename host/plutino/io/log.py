"""The ``log`` sink: each result row as one JSON line in the host's log.

Rule action ``{"log": {}}`` (optionally ``{"log": {"level": "debug"}}``). Meant for trying
rules out: it formats row by row, so it is not for high rates.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping

import pyarrow as pa

from plutino_contract.protocols import Context

from ._base import InProcessSink
from .memory import VERSION, _check_keys

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}


class LogSink(InProcessSink):
    def __init__(self, logger: logging.Logger, level: int) -> None:
        self.logger = logger
        self.level = level

    def write(self, batch: pa.RecordBatch) -> None:
        if not self.logger.isEnabledFor(self.level):
            return
        for row in batch.to_pylist():
            self.logger.log(self.level, "%s", json.dumps(row, default=str, ensure_ascii=False))


class LogSinkPlugin:
    name = "log"
    version = VERSION
    kind = "sink"

    def create(self, config: Mapping[str, Any], context: Context) -> LogSink:
        config = _check_keys("log sink", config, {"level"}, '{"log": {"level": "info"}}')
        level = str(config.get("level", "info")).lower()
        if level not in LEVELS:
            raise ValueError(f"log sink: level {level!r} is not one of {', '.join(LEVELS)}")
        name = f"plutino.sink.log.{context.rule_id}" if context.rule_id else "plutino.sink.log"
        return LogSink(logging.getLogger(name), LEVELS[level])


__all__ = ["LogSinkPlugin"]
