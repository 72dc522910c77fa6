"""Running a rule's SQL over batches in hand, without threads, sources or sinks.

:func:`query` is the engine as a library: the same planner, operators and functions as a
rule, run synchronously over a list of RecordBatches, for scripts, notebooks and tests::

    from plutino.engine.query import query
    table = query("SELECT mul2add1(t) AS t2 FROM s WHERE t > 3", [batch], registry=registry)

The input is a bounded stream: when it ends, every open window is emitted. Processing time
is the ``arrival_ms`` given per batch (default: all at 0), so time windows are exact too.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import pyarrow as pa

from .errors import SqlError
from .pipeline import Pipeline, StageError
from .planner import QueryPlan, plan_query
from .plugin_functions import FunctionLookup, NoPlugins, RegistryFunctions
from .sql import parse_select
from .streams import STREAM_OPTIONS, StreamDef
from .windows import concat_batches


def query(
    sql: str,
    batches: Iterable[pa.RecordBatch],
    *,
    registry: Any = None,
    schema: pa.Schema | None = None,
    timestamp: str | None = None,
    event_time: bool = False,
    late_tolerance_ms: int = 0,
    arrival_ms: Sequence[int] | None = None,
) -> pa.Table:
    """Run ``sql`` over ``batches`` and return all result rows.

    ``schema`` declares the stream (else it is schemaless: columns come from the batches);
    ``timestamp`` names its event-time column (used when ``event_time``); ``registry``
    provides plugin functions."""
    if event_time and not timestamp:
        raise SqlError("event time needs the timestamp column", hint='pass timestamp="<column>"')
    plan = prepare(sql, registry=registry, schema=schema, timestamp=timestamp)
    for use in plan.uses:
        use.open("query", f"function_{use.name}_{use.index}")
    try:
        out = run(plan, batches, schema=schema, event_time=event_time, late_tolerance_ms=late_tolerance_ms,
                  arrival_ms=arrival_ms)
    finally:
        for use in plan.uses:
            use.close()
    out = [b for b in out if b.num_rows]
    if not out:
        return pa.table({f.name: pa.array([], f.expr.type or pa.null()) for f in plan.fields})
    return pa.Table.from_batches([concat_batches(out)])


def prepare(sql: str, *, registry: Any = None, schema: pa.Schema | None = None,
            timestamp: str | None = None) -> QueryPlan:
    """The checked plan of ``sql`` over a stream of ``schema`` (None: schemaless), as
    :func:`query` runs it; its function uses are not open yet (``use.open``)."""
    lookup: FunctionLookup = RegistryFunctions(registry) if registry is not None else NoPlugins()
    select = parse_select(sql)
    from_ = select.args.get("from_") or select.args.get("from")
    name = from_.this.name if from_ is not None and from_.this is not None else "stream"
    options = dict(STREAM_OPTIONS)
    options.update(TYPE="memory", TIMESTAMP=timestamp)
    fields = tuple((f.name, f.type) for f in schema) if schema is not None else ()
    stream = StreamDef(name=name, fields=fields, options=tuple(options.items()), sql="", schemaless=schema is None)
    return plan_query(sql, {name: stream}, lookup)


def run(plan: QueryPlan, batches: Iterable[pa.RecordBatch], *, schema: pa.Schema | None = None,
        event_time: bool = False, late_tolerance_ms: int = 0, arrival_ms: Sequence[int] | None = None,
        window_max_rows: int = 1_000_000, window_max_bytes: int = 256 << 20) -> list[pa.RecordBatch]:
    """Run a :func:`prepare`-d plan, its uses open, over the bounded stream ``batches``: the
    result batches (some may be empty), every open window emitted at the end. The first error
    of a stage is raised (the plugin's own error, not the stage's)."""
    pipeline = Pipeline(plan, event_time=event_time, late_tolerance_ms=late_tolerance_ms,
                        window_max_rows=window_max_rows, window_max_bytes=window_max_bytes)
    errors: list[BaseException] = []
    pipeline.on_error = lambda metrics, exc: errors.append(exc)
    out: list[pa.RecordBatch] = []
    for i, batch in enumerate(batches):
        if schema is not None and not batch.schema.equals(schema):
            from .decode import conform

            batch = conform(batch, schema)
        arrival = arrival_ms[i] if arrival_ms is not None else 0
        out += pipeline.on_batch(batch, arrival)
        if errors:
            raise _unwrapped(errors[0])
    out += pipeline.on_end()
    if errors:
        raise _unwrapped(errors[0])
    return out


def _unwrapped(exc: BaseException) -> BaseException:
    """The original error of a failed stage (a PluginCallError, a pyarrow error), so that a
    script catches what it would catch calling the function itself."""
    return exc.__cause__ if isinstance(exc, StageError) and exc.__cause__ is not None else exc


__all__ = ["prepare", "query", "run"]
