"""An :class:`~plutino.udf.ArrowUdf` in this process: its registry, its plan, its output schema.

The SQL is a rule's: ``SELECT <select> FROM batch [WHERE <where>] [GROUP BY <keys>,
TUMBLINGWINDOW(dd, 1)]``, planned by the engine's own :func:`plutino.engine.query.prepare` and
run by :func:`plutino.engine.query.run` (the rule's :class:`~plutino.engine.pipeline.Pipeline`).
An aggregate query gets a window that holds the whole call's rows (they all arrive at time 0
and the window is emitted when the call's input ends): one row per group per call.

Per process: one :class:`~plutino.registry.Registry` per set of plugins (each plugin loaded
once, :func:`plutino.udf.plugins.load`). Per thread: one :class:`Compiled` per UDF and input
schema, whose function instances stay open for the life of the thread (a plan and its
instances are run by one thread at a time, as a rule's are).
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import pyarrow as pa

from plutino.engine import BUILTIN_NAMES, SqlError
from plutino.engine.planner import QueryPlan
from plutino.engine.query import prepare, run
from plutino.engine.windows import concat_batches
from plutino.errors import PlutinoError
from plutino.io.builtin import register_builtins
from plutino.registry import Registry

from .plugins import PluginFile, load


class ArrowUdf(Protocol):
    """What this module reads of a :class:`~plutino.udf.arrow_udf.ArrowUdf` (a Protocol, so
    that the two modules do not import each other)."""

    plugins: tuple[PluginFile, ...]
    select: str
    where: str | None
    group_by: str | None
    key: str
    sql: str


#: The window of an aggregate UDF: longer than the one instant (0 ms) every row arrives at.
WHOLE_CALL = "TUMBLINGWINDOW(dd, 1)"
_PARTS = ("select", "FROM batch", "where", "group_by")
_PREFIX = {"select": "SELECT ", "where": "WHERE ", "group_by": "GROUP BY "}


def sql_of(select: str, where: str | None, group_by: str | None, *, window: bool | None = None) -> str:
    """The rule SQL of a UDF, one part per line (so that an error's place names the part).
    ``window``: add the whole-call window (None: when there are GROUP BY keys)."""
    window = group_by is not None if window is None else window
    lines = ["SELECT " + _one_line(select), "FROM batch", "WHERE " + _one_line(where) if where else ""]
    if window:
        lines.append("GROUP BY " + (_one_line(group_by) + ", " if group_by else "") + WHOLE_CALL)
    return "\n".join(lines).rstrip("\n")


def _one_line(text: str | None) -> str:
    return " ".join((text or "").splitlines())


class Compiled:
    """The plan of one UDF over one input schema, its function instances open."""

    def __init__(self, plan: QueryPlan, input_schema: pa.Schema) -> None:
        self.plan = plan
        self.input_schema = input_schema
        self.windowed = plan.window is not None
        for use in plan.uses:
            use.open("udf", f"function_{use.name}_{use.index}")
        self.schema = self._schema()

    def _schema(self) -> pa.Schema:
        """The result's schema, as the projection makes it: with ``*`` the input's columns that
        no field replaces, then the fields; a field's type is the plan's, else that of its
        value over no rows (a plugin function that could not tell its type in validate())."""
        names = {f.name for f in self.plan.fields}
        star = [f for f in self.input_schema if not f.name.startswith("__") and f.name not in names] \
            if self.plan.star else []
        empty = pa.RecordBatch.from_pylist([], schema=self.input_schema)
        return pa.schema(star + [(f.name, f.expr.type or _type_over(f.expr, empty)) for f in self.plan.fields])

    def _run(self, batches: list[pa.RecordBatch]) -> list[pa.RecordBatch]:
        rows = sum(b.num_rows for b in batches)
        return run(self.plan, batches, window_max_rows=max(rows, 1), window_max_bytes=1 << 62)

    def _conformed(self, out: list[pa.RecordBatch]) -> list[pa.RecordBatch]:
        schema = self.schema
        return [b if b.schema.equals(schema) else _cast(b, schema) for b in out if b.num_rows]

    def batch(self, batches: list[pa.RecordBatch]) -> pa.RecordBatch:
        out = self._conformed(self._run(batches))
        if not out:
            return pa.RecordBatch.from_pylist([], schema=self.schema)
        return out[0] if len(out) == 1 else concat_batches(out)

    def table(self, batches: list[pa.RecordBatch]) -> pa.Table:
        return pa.Table.from_batches(self._conformed(self._run(batches)), schema=self.schema)


def _type_over(expr: Any, empty: pa.RecordBatch) -> pa.DataType:
    try:
        value = expr.eval(empty)
    except Exception:  # an aggregate's value needs its group: the first results will tell
        return pa.null()
    return value.type if isinstance(value, (pa.Array, pa.ChunkedArray, pa.Scalar)) else pa.null()


def _cast(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with the types of ``schema`` (a column all null in this batch comes as null type)."""
    if batch.schema.names != schema.names:
        raise PlutinoError(f"plutino.udf: a result has the columns {batch.schema.names}, the output schema"
                           f" {schema.names}; please report this with the UDF's SQL")
    return pa.RecordBatch.from_arrays([c.cast(f.type) for c, f in zip(batch.columns, schema)], schema=schema)


_registries: dict[tuple[str, ...], Registry] = {}
_registries_lock = threading.Lock()
_local = threading.local()


def registry_of(udf: ArrowUdf) -> Registry:
    """This process's registry of the built-ins and ``udf``'s plugins (loaded on first use)."""
    key = tuple(p.sha256 for p in udf.plugins)
    registry = _registries.get(key)
    if registry is None:
        with _registries_lock:
            registry = _registries.get(key)
            if registry is None:
                registry = Registry(BUILTIN_NAMES)
                register_builtins(registry)
                for plugin in udf.plugins:
                    registry.register(load(plugin))
                _registries[key] = registry
    return registry


def for_schema(udf: ArrowUdf, schema: pa.Schema) -> Compiled:
    """This thread's :class:`Compiled` of ``udf`` over batches of ``schema``."""
    cache: dict[tuple[str, pa.Schema], Compiled] | None = getattr(_local, "compiled", None)
    if cache is None:
        cache = _local.compiled = {}
    key = (udf.key, schema)
    found = cache.get(key)
    if found is None:
        found = cache[key] = Compiled(plan(udf, schema), schema)
    return found


def check(udf: ArrowUdf) -> None:
    """Load ``udf``'s plugins and plan its SQL over a schemaless batch: an unknown function, a
    wrong argument count or a syntax error is raised now, in the caller's process."""
    plan(udf, None)


#: The planner's problem with an aggregate outside a window: a UDF's cue to add the whole-call window.
NEEDS_WINDOW = "aggregate functions need a window"


def plan(udf: ArrowUdf, schema: pa.Schema | None) -> QueryPlan:
    """The engine's plan of ``udf`` over ``schema``: without a window, unless it aggregates."""
    registry = registry_of(udf)
    try:
        try:
            return prepare(udf.sql, registry=registry, schema=schema)
        except SqlError as exc:
            if udf.group_by is not None or exc.problem != NEEDS_WINDOW:
                raise
        return prepare(sql_of(udf.select, udf.where, None, window=True), registry=registry, schema=schema)
    except SqlError as exc:
        raise _as_udf_error(exc, udf) from None


#: The engine's advice for a server's user, and for a UDF's.
_ADVICE = {
    "no built-in or installed plugin has it; install the plugin that provides it":
        "no built-in function or plugin of this UDF has it; pass the plugin that provides it to plutino.udf",
    "(built-in and plugin functions: see GET /plugins/udfs)": "",
    "add one to GROUP BY, e.g. GROUP BY TUMBLINGWINDOW(ss, 10)":
        "a UDF aggregates each batch on its own: put the keys in group_by= (no window)",
}


def _as_udf_error(exc: SqlError, udf: ArrowUdf) -> SqlError:
    """``exc`` placed in the UDF's argument (select=, where=, group_by=) rather than in the SQL
    the UDF made, with the advice said for a UDF."""
    hint = exc.hint
    for server, library in _ADVICE.items():
        hint = hint.replace(server, library)
    hint = hint.strip().rstrip(";").strip()
    problem = exc.problem
    if exc.line is not None and 1 <= exc.line <= len(_PARTS) and exc.col is not None:
        part = _PARTS[exc.line - 1]
        if part in _PREFIX:
            problem = f"{problem} in {part}= at col {max(1, exc.col - len(_PREFIX[part]))}"
        elif exc.line == 2:  # at FROM: the select list did not end well
            problem = f"{problem} at the end of select="
    problem += f" (in plutino.udf: {udf.sql!r})" if problem == exc.problem else ""
    return SqlError(problem, hint=hint)

