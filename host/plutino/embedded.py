"""The engine without the server: :class:`Engine`, for scripts, notebooks and other engines.

The same SQL, built-in functions and plugins as a rule on the server, over batches in hand::

    import pyarrow as pa
    import plutino

    engine = plutino.Engine(plugins=["build/fastmath.so"])
    table = engine.query("SELECT mul2add1(t) AS t2 FROM s WHERE t > 3",
                         pa.table({"t": [1.0, 5.0, 7.0]}))

``query`` treats its input as a bounded stream: every open window is emitted when it ends.
For running rules with sources and sinks in-process (threads, windows on the clock), use
:attr:`Engine.rules`, the :class:`~plutino.engine.RuleManager` the server uses.

Everything runs in the caller's process, as a library should. ``Engine(isolated=True)`` runs
the plugins' code in a worker process instead (:mod:`plutino.dataplane.isolated_engine`): a
crashing plugin raises an error naming it rather than ending the script.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence, TypeAlias

import pyarrow as pa

from .engine import BUILTIN_NAMES, Catalog, RuleManager, SqlError
from .engine.query import query as _query
from .errors import PlutinoError
from .io.builtin import register_builtins
from .native.loader import load_plugin
from .registry import Registry

Batches: TypeAlias = "pa.Table | pa.RecordBatch | Iterable[pa.RecordBatch]"


class Engine:
    """Plutino's engine in this process: a registry of plugins and the SQL that uses them."""

    def __init__(self, plugins: Iterable[str | Path] = (), *, registry: Registry | None = None,
                 isolated: bool = False) -> None:
        self.registry = registry if registry is not None else Registry(BUILTIN_NAMES)
        register_builtins(self.registry)
        self._rules: RuleManager | None = None
        self._worker: Any = None
        if isolated:
            from .dataplane.isolated_engine import WorkerEngine

            self._worker = WorkerEngine()
        for path in plugins:
            self.load(path)

    def load(self, path: str | Path, kind: str | None = None) -> Any:
        """Load a native plugin (checked as ``plutino plugin check`` does) and register it."""
        if self._worker is not None:
            from .dataplane.probe import probe_load

            plugin = probe_load(path, kind, self._worker.settings.probe_timeout_s)
            self.registry.register(plugin)
            self._worker.add_plugin(plugin)
            return plugin
        plugin = load_plugin(path, kind=kind)
        self.registry.register(plugin)
        return plugin

    def register(self, plugin: Any) -> None:
        """Register a Python plugin that implements the contract's Protocols."""
        if self._worker is not None:
            raise PlutinoError("an isolated Engine runs its plugins in a worker process, where a Python object"
                               " cannot go; use Engine() (in-process) for Python plugins")
        self.registry.register(plugin)

    def query(self, sql: str, batches: Batches, *, schema: pa.Schema | None = None,
              timestamp: str | None = None, event_time: bool = False, late_tolerance_ms: int = 0,
              arrival_ms: Sequence[int] | None = None) -> pa.Table:
        """Run a SELECT over ``batches`` (a Table, a RecordBatch or an iterable of batches)
        and return every result row. Arguments after ``batches`` are those of
        :func:`plutino.engine.query.query`; errors are SqlError (the SQL) or the plugin's
        own PluginCallError."""
        try:
            return self._query(sql, batches, schema, timestamp, event_time, late_tolerance_ms, arrival_ms)
        except SqlError as exc:
            raise _library_advice(exc) from None

    def _query(self, sql: str, batches: Batches, schema: pa.Schema | None, timestamp: str | None,
               event_time: bool, late_tolerance_ms: int, arrival_ms: Sequence[int] | None) -> pa.Table:
        if self._worker is not None:
            table = batches if isinstance(batches, pa.Table) else pa.Table.from_batches(
                [batches] if isinstance(batches, pa.RecordBatch) else list(batches), schema=schema)
            return self._worker.query(sql, table, {
                "schema": schema, "timestamp": timestamp, "event_time": event_time,
                "late_tolerance_ms": late_tolerance_ms, "arrival_ms": arrival_ms})
        if isinstance(batches, (pa.Table, pa.RecordBatch)):
            # the data in hand has a schema: declare it, so the SQL is checked (plugin functions'
            # validate(), column names) before any row runs, as a rule on a typed stream is
            schema = schema if schema is not None else batches.schema
            batches = batches.to_batches() if isinstance(batches, pa.Table) else [batches]
        return _query(sql, batches, registry=self.registry, schema=schema, timestamp=timestamp,
                      event_time=event_time, late_tolerance_ms=late_tolerance_ms, arrival_ms=arrival_ms)

    @property
    def rules(self) -> RuleManager:
        """Streams and rules running in this process (created on first use)."""
        if self._worker is not None:
            raise PlutinoError("rules of an isolated Engine are not supported; run a server (plutino serve),"
                               " whose rules run in supervised workers, or use Engine() in-process")
        if self._rules is None:
            self._rules = RuleManager(self.registry, Catalog())
        return self._rules

    def close(self) -> None:
        """Stop every rule started through :attr:`rules`."""
        if self._rules is not None:
            self._rules.shutdown()
            self._rules = None
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: The engine's advice for a server's user (REST, installed plugins), and for a script's.
_LIBRARY_ADVICE = {
    "no built-in or installed plugin has it; install the plugin that provides it":
        "no built-in or loaded plugin has it; load the plugin that provides it (engine.load(path))",
    "(built-in and plugin functions: see GET /plugins/udfs)":
        "(this Engine's functions: engine.registry.function_names())",
}


def _library_advice(exc: SqlError) -> SqlError:
    """``exc`` with the server's advice said as this library's."""
    hint = exc.hint
    for server, library in _LIBRARY_ADVICE.items():
        hint = hint.replace(server, library)
    return exc if hint == exc.hint else SqlError(exc.problem, line=exc.line, col=exc.col, hint=hint)


__all__ = ["Engine"]
