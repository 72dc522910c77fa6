"""Streams as the control plane keeps them: parsed and stored here, copied to every worker.

A stream is a definition (``CREATE STREAM``): no plugin code runs to keep one, so the
control plane parses, checks and stores it, and every worker gets a copy (new workers get
all of them when they start). Part of :class:`~plutino.dataplane.control.DataPlane`.
"""

from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp

from plutino.engine.rules import RuleDef
from plutino.engine.stream_api import StreamApi
from plutino.engine.streams import StreamDef


class StreamControl(StreamApi):
    """The stream half of the engine's API, each change copied to every worker."""

    catalog: Any
    registry: Any
    supervisor: Any

    def _settle(self, futures: Any, what: str) -> None:
        raise NotImplementedError

    def _stream_users(self, name: str) -> list[str]:
        return [r.id for r in self.catalog.rules() if _reads(r, name)]

    def _stream_stored(self, stream: StreamDef) -> None:
        self._settle(self.supervisor.broadcast("put_stream", sql=stream.sql), f"stream {stream.name}")

    def _stream_dropped(self, name: str) -> None:
        self._settle(self.supervisor.broadcast("drop_stream", name=name), f"dropping stream {name}")


def stream_name(sql: str) -> str | None:
    try:
        tree = sqlglot.parse_one(sql)
    except Exception:  # noqa: BLE001 - a rule that does not parse reads no stream we can name
        return None
    table = tree.find(exp.Table) if tree is not None else None
    return table.name if table is not None else None


def _reads(rule: RuleDef, stream: str) -> bool:
    name = stream_name(rule.sql)
    return stream in rule.sql if name is None else name == stream


__all__ = ["StreamControl", "stream_name"]
