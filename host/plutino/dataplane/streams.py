"""Streams as the control plane keeps them: parsed and stored here, copied to every worker.

A stream is a definition (``CREATE STREAM``): no plugin code runs to keep one, so the
control plane parses, checks and stores it, and every worker gets a copy (new workers get
all of them when they start). Part of :class:`~plutino.dataplane.control.DataPlane`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from plutino.engine.plugin_props import PluginMetadata
from plutino.engine.rules import RuleDef
from plutino.engine.stream_api import StreamApi
from plutino.engine.streams import StreamDef


class StreamControl(StreamApi):
    """The stream half of the engine's API, each change copied to every worker."""

    catalog: Any
    registry: Any
    supervisor: Any
    _memory_streams: frozenset[str] | None = None  # names of the memory streams; None: not known yet

    _metadata: PluginMetadata | None = None

    def _settle(self, futures: Any, what: str) -> None:
        raise NotImplementedError

    @property
    def plugin_metadata(self) -> PluginMetadata:  # type: ignore[override]
        """The installed plugins' metadata (``etc/<kind>s/<name>.json`` of the data dir), which a
        stream's own properties are checked against here, where it is created."""
        if self._metadata is None:
            self._metadata = PluginMetadata.under(Path(self.supervisor.data_root) / "etc")
        return self._metadata

    def _stream_users(self, name: str) -> list[str]:
        return [r.id for r in self.catalog.rules() if _reads(r, name)]

    def _stream_stored(self, stream: StreamDef) -> None:
        self._memory_streams = None
        self._settle(self.supervisor.broadcast("put_stream", sql=stream.sql), f"stream {stream.name}")

    def _stream_dropped(self, name: str) -> None:
        self._memory_streams = None
        self._settle(self.supervisor.broadcast("drop_stream", name=name), f"dropping stream {name}")


    def _memory_stream_of(self, rule: RuleDef) -> StreamDef | None:
        """The rule's stream if it is a ``memory`` one (placement joins the rules of a memory
        topic), else None. Most hosts have no memory stream, and then no SQL is parsed: a parse
        is 0.2 ms, and a start-up places thousands of rules."""
        if self._memory_streams is None:
            self._memory_streams = frozenset(s.name for s in self.catalog.streams() if s.type == "memory")
        sql = rule.sql.lower()
        if not any(name.lower() in sql for name in self._memory_streams):
            return None
        name = stream_name(rule.sql)
        return self.catalog.get_stream(name) if name in self._memory_streams and self.catalog.has_stream(name) else None


@lru_cache(maxsize=16384)
def stream_names(sql: str) -> tuple[str, ...]:
    """The streams and tables a rule's SQL reads, FROM's first (cached: dropping a stream asks
    it of every rule)."""
    try:
        tree = sqlglot.parse_one(sql)
    except Exception:  # noqa: BLE001 - a rule that does not parse reads no stream we can name
        return ()
    return tuple(t.name for t in tree.find_all(exp.Table)) if tree is not None else ()


def stream_name(sql: str) -> str | None:
    """The stream a rule's SQL reads FROM."""
    names = stream_names(sql)
    return names[0] if names else None


def _reads(rule: RuleDef, stream: str) -> bool:
    names = stream_names(rule.sql)
    return stream in rule.sql if not names else stream in names


__all__ = ["StreamControl", "stream_name", "stream_names"]
