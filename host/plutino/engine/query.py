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
from .planner import plan_query
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
    lookup: FunctionLookup = RegistryFunctions(registry) if registry is not None else NoPlugins()
    select = parse_select(sql)
    from_ = select.args.get("from_") or select.args.get("from")
    name = from_.this.name if from_ is not None and from_.this is not None else "stream"
    options = dict(STREAM_OPTIONS)
    options.update(TYPE="memory", TIMESTAMP=timestamp)
    fields = tuple((f.name, f.type) for f in schema) if schema is not None else ()
    stream = StreamDef(name=name, fields=fields, options=tuple(options.items()), sql="", schemaless=schema is None)
    if event_time and not timestamp:
        raise SqlError("event time needs the timestamp column", hint='pass timestamp="<column>"')
    plan = plan_query(sql, {name: stream}, lookup)
    pipeline = Pipeline(plan, event_time=event_time, late_tolerance_ms=late_tolerance_ms)
    errors: list[BaseException] = []
    pipeline.on_error = lambda metrics, exc: errors.append(exc)
    for use in plan.uses:
        use.open("query", f"function_{use.name}_{use.index}")
    out: list[pa.RecordBatch] = []
    try:
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
    finally:
        for use in plan.uses:
            use.close()
    out = [b for b in out if b.num_rows]
    if not out:
        return pa.table({f.name: pa.array([], f.expr.type or pa.null()) for f in plan.fields})
    return pa.Table.from_batches([concat_batches(out)])


def _unwrapped(exc: BaseException) -> BaseException:
    """The original error of a failed stage (a PluginCallError, a pyarrow error), so that a
    script catches what it would catch calling the function itself."""
    return exc.__cause__ if isinstance(exc, StageError) and exc.__cause__ is not None else exc


__all__ = ["query"]
