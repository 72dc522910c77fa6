"""Streams as the control plane keeps them: parsed and stored here, copied to every worker.

A stream is a definition (``CREATE STREAM``): no plugin code runs to keep one, so the
control plane parses, checks and stores it, and every worker gets a copy (new workers get
all of them when they start). Part of :class:`~plutino.dataplane.control.DataPlane`.
"""

from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp

from plutino.engine.errors import RuleError
from plutino.engine.hints import closest, listing
from plutino.engine.rules import RuleDef
from plutino.engine.streams import (
    CreateStream,
    DescribeStream,
    DropStream,
    StreamDef,
    parse_create_stream,
    parse_stream_statement,
)


class StreamControl:
    """The stream half of the engine's API (``POST /streams`` and the rest)."""

    catalog: Any
    registry: Any
    supervisor: Any

    def _settle(self, futures: Any, what: str) -> None:
        raise NotImplementedError

    def exec_stream_sql(self, sql: str) -> Any:
        stmt = parse_stream_statement(sql)
        if isinstance(stmt, CreateStream):
            self._put_stream(stmt.stream)
            return f"Stream {stmt.stream.name} is created."
        if isinstance(stmt, DropStream):
            self.drop_stream(stmt.name)
            return f"Stream {stmt.name} is dropped."
        if isinstance(stmt, DescribeStream):
            return self.describe_stream(stmt.name)
        return self.list_streams()

    def create_stream(self, sql: str) -> StreamDef:
        stream = parse_create_stream(sql)
        self._put_stream(stream)
        return stream

    def _put_stream(self, stream: StreamDef, replace: bool = False) -> None:
        self._check_source(stream)
        self.catalog.put_stream(stream, replace=replace)
        self._settle(self.supervisor.broadcast("put_stream", sql=stream.sql), f"stream {stream.name}")

    def replace_stream(self, sql: str) -> StreamDef:
        stream = parse_create_stream(sql)
        self.catalog.get_stream(stream.name)
        self._put_stream(stream, replace=True)
        return stream

    def _check_source(self, stream: StreamDef) -> None:
        if self.registry.find("source", stream.type) is None:
            names = [p.name for p in self.registry.plugins("source")]
            best = closest(stream.type, names)
            guess = f'did you mean TYPE="{best}"? ' if best else ""
            raise RuleError(
                f"stream '{stream.name}' has TYPE=\"{stream.type}\", but no source plugin has that name; "
                f"{guess}install it, or use one of: {listing(names)}")

    def drop_stream(self, name: str) -> None:
        users = [r.id for r in self.catalog.rules() if _reads(r, name)]
        if users:
            raise RuleError(f"stream '{name}' is used by rule(s) {', '.join(users)}; delete them first")
        self.catalog.drop_stream(name)
        self._settle(self.supervisor.broadcast("drop_stream", name=name), f"dropping stream {name}")

    def describe_stream(self, name: str) -> dict[str, Any]:
        return self.catalog.get_stream(name).describe()

    def list_streams(self) -> list[str]:
        return [s.name for s in self.catalog.streams()]


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
