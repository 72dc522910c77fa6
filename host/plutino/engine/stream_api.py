"""The stream half of the engine's API: ``POST /streams`` and the rest, over a catalog.

Shared by :class:`~plutino.engine.RuleManager` (everything in one process) and the control
plane's :class:`~plutino.dataplane.control.DataPlane` (definitions here, copies in every
worker): both check a stream's source against the registry the same way and answer the same
words. What differs goes through three hooks: ``_stream_stored`` and ``_stream_dropped``
after the catalog changed, ``_stream_users`` for the rules that read a stream.
"""

from __future__ import annotations

from typing import Any

from .errors import NotFoundError, RuleError
from .hints import closest, listing
from .plugin_props import PluginMetadata, source_props
from .streams import (
    CreateStream,
    DescribeStream,
    DropStream,
    StreamDef,
    parse_create_stream,
    parse_stream_statement,
)


class StreamApi:
    """Streams over ``self.catalog``, checked against ``self.registry``."""

    catalog: Any
    registry: Any
    #: the plugins' metadata (``<name>.json``) that a stream's own properties are checked
    #: against; None: no metadata, properties go to plugins as written
    plugin_metadata: PluginMetadata | None = None

    def exec_stream_sql(self, sql: str) -> Any:
        """Run one stream statement, answering as eKuiper's POST /streams does."""
        stmt = parse_stream_statement(sql)
        if isinstance(stmt, CreateStream):
            self._put_stream(stmt.stream)
            return f"{stmt.stream.what.title()} {stmt.stream.name} is created."
        if isinstance(stmt, DropStream):
            self.drop_stream(stmt.name, table=stmt.table)
            return f"{'Table' if stmt.table else 'Stream'} {stmt.name} is dropped."
        if isinstance(stmt, DescribeStream):
            return self.describe_stream(stmt.name, table=stmt.table)
        return self.list_tables() if stmt.table else self.list_streams()

    def create_stream(self, sql: str) -> StreamDef:
        stream = parse_create_stream(sql)
        self._put_stream(stream)
        return stream

    def replace_stream(self, sql: str) -> StreamDef:
        """PUT /streams/{id} (and /tables/{id}): a new definition; rules pick it up when they
        next start."""
        stream = parse_create_stream(sql)
        self.get_definition(stream.name, stream.is_table)
        self._put_stream(stream, replace=True)
        return stream

    def get_definition(self, name: str, table: bool = False) -> StreamDef:
        """The stream (or, with ``table``, the table) of that name; NotFoundError otherwise."""
        found = self.catalog.get_stream(name) if self.catalog.has_stream(name) else None
        if found is None or found.is_table != table:
            what = "table" if table else "stream"
            names = [s.name for s in self.catalog.streams() if s.is_table == table]
            hint = f" ({name} is a {found.what})" if found is not None else ""
            raise NotFoundError(what, name, names, extra=hint)
        return found

    def _put_stream(self, stream: StreamDef, replace: bool = False) -> None:
        self._check_source(stream)
        self.catalog.put_stream(stream, replace=replace)
        self._stream_stored(stream)

    def _check_source(self, stream: StreamDef) -> dict[str, Any]:
        """Refuse a stream whose source is not installed or does not take its properties;
        return those properties as the plugin gets them (:func:`.plugin_props.source_props`)."""
        plugin = self.registry.find("source", stream.type)
        if plugin is None:
            names = [p.name for p in self.registry.plugins("source")]
            best = closest(stream.type, names)
            guess = f'did you mean TYPE="{best}"? ' if best else ""
            raise RuleError(
                f"stream '{stream.name}' has TYPE=\"{stream.type}\", but no source plugin has that name; "
                f"{guess}install it, or use one of: {listing(names)}"
            )
        return source_props(stream, plugin, self.plugin_metadata)

    def drop_stream(self, name: str, force: bool = False, table: bool = False) -> None:
        """Drop a stream; refused while rules read it, unless ``force`` (eKuiper's
        ``DELETE /streams/{name}?force=true``): then only the definition goes, the rules stay
        as they are (a running one keeps running; none can start again until the stream is
        created again)."""
        what = self.get_definition(name, table).what
        users = [] if force else self._stream_users(name)
        if users:
            raise RuleError(f"{what} '{name}' is used by rule(s) {', '.join(users)}; delete them first, or drop "
                            f"the definition anyway with DELETE /{what}s/{name}?force=true (the rules stay, and "
                            f"cannot start again until the {what} is created again)")
        self.catalog.drop_stream(name)
        self._stream_dropped(name)

    def describe_stream(self, name: str, table: bool = False) -> dict[str, Any]:
        return self.get_definition(name, table).describe()

    def list_streams(self) -> list[str]:
        return [s.name for s in self.catalog.streams() if not s.is_table]

    def list_tables(self) -> list[str]:
        return [s.name for s in self.catalog.streams() if s.is_table]

    # -- hooks ---------------------------------------------------------------------------
    def _stream_users(self, name: str) -> list[str]:
        return []

    def _stream_stored(self, stream: StreamDef) -> None:
        """After the catalog took a new or replaced stream."""

    def _stream_dropped(self, name: str) -> None:
        """After the catalog dropped a stream."""


__all__ = ["StreamApi"]
