"""The operators of a rule, from the source's batches to the sinks' batches.

A :class:`Pipeline` is built from a :class:`~plutino.engine.planner.QueryPlan` and run by one
thread: it receives the stream's batches (with their arrival time), clock ticks and the end
of a bounded stream, and returns the batches to send to the sinks. Its stages, in order:

    without a window:  filter -> project [-> order -> limit]
    with a window:     filter (time windows) -> window -> filter (count windows) ->
                       aggregate (when grouped) -> having -> order -> limit -> project

Each stage works on whole Arrow batches and keeps eKuiper-style metrics. A stage that fails
(a plugin function raising, a value pyarrow cannot cast) counts the exception, drops that
batch or window, and the pipeline carries on with the next one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

from .expr import Expr, as_array, broadcast
from .metrics import NodeMetrics
from .planner import QueryPlan
from .windows import Window, WindowAssigner, make_assigner


_FILTER = pc.get_function("filter")


@dataclass
class Chunk:
    """A batch on its way through the stages, with the bounds of the window it came from."""

    batch: pa.RecordBatch
    start: int | None = None
    end: int | None = None


class StageError(Exception):
    """A failure inside a stage, with the part of the query that failed ("field 't2': ...")."""


class Stage:
    kind = "stage"

    def __init__(self, index: int) -> None:
        self.metrics = NodeMetrics(f"op_{index}_{self.kind}_0")

    def run(self, chunk: Chunk) -> list[Chunk]:
        raise NotImplementedError


class FilterStage(Stage):
    kind = "filter"

    def __init__(self, index: int, predicate: Expr, kind: str = "filter") -> None:
        self.kind = kind
        super().__init__(index)
        self.predicate = predicate.eval

    def run(self, chunk: Chunk) -> list[Chunk]:
        try:
            mask = self.predicate(chunk.batch)
        except Exception as exc:
            raise StageError(f"{'HAVING' if self.kind == 'having' else 'WHERE'}: {exc}") from exc
        if isinstance(mask, pa.Scalar):
            return [chunk] if mask.as_py() else []
        kept = _FILTER.call([chunk.batch, mask])  # batch.filter(mask) without its wrapper; null is false
        return [Chunk(kept, chunk.start, chunk.end)] if kept.num_rows else []


class AggregateStage(Stage):
    """One row per group: GROUP BY keys, aggregate results and the first row's columns. With
    ``plan.spread`` (aggregates only in HAVING/ORDER BY), every row with the window's results."""

    kind = "aggregate"

    def __init__(self, index: int, plan: QueryPlan) -> None:
        super().__init__(index)
        self.plan = plan
        group = plan.group
        assert group is not None
        self.spread = plan.spread
        self.all_columns = group.all_columns
        self.columns = sorted(group.columns)
        self.builtin = [a for a in plan.aggs if a.builtin is not None]
        self.plugin = [a for a in plan.aggs if a.use is not None]

    def run(self, chunk: Chunk) -> list[Chunk]:
        rows = chunk.batch
        n = rows.num_rows
        if n == 0:
            return []
        plan = self.plan
        cols: dict[str, pa.Array] = {}
        keys: list[str] = []
        for slot, dim in zip(plan.dim_slots, plan.dims):
            cols[slot] = broadcast(dim.eval(rows), n)
            keys.append(slot)
        if not keys:
            cols["__g"] = pa.repeat(pa.scalar(0, pa.int8()), n)
            keys.append("__g")
        cols["__row"] = pc.subtract(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), n)), 1)
        specs: list[tuple] = []
        outputs: dict[str, str] = {}
        for i, agg in enumerate(self.builtin):
            b = agg.builtin
            assert b is not None
            if agg.star:
                spec: tuple = ("__row", "count", pc.CountOptions(mode="all"))
                outputs[agg.slot] = "__row_count"
            else:
                col = f"__x{i}"
                cols[col] = broadcast(agg.args[0].eval(rows), n)
                spec = (col, b.agg, b.agg_options) if b.agg_options is not None else (col, b.agg)
                outputs[agg.slot] = f"{col}_{b.agg}"
            if spec not in specs:
                specs.append(spec)
        specs.append(("__row", "min"))
        if self.plugin:
            specs.append(("__row", "list"))
        grouped = pa.table(cols).group_by(keys, use_threads=False).aggregate(specs)
        ngroups = grouped.num_rows
        if self.spread:
            return [Chunk(self._spread(rows, grouped, outputs), chunk.start, chunk.end)]
        first = grouped.column("__row_min").combine_chunks()

        names: list[str] = []
        arrays: list[pa.Array] = []
        raw = (
            [f.name for f in rows.schema]
            if self.all_columns
            else [c for c in self.columns if rows.schema.get_field_index(c) >= 0]
        )
        for name in raw:
            names.append(name)
            arrays.append(rows.column(name).take(first))
        for slot in plan.dim_slots:
            names.append(slot)
            arrays.append(grouped.column(slot).combine_chunks())
        for agg in self.builtin:
            names.append(agg.slot)
            arrays.append(grouped.column(outputs[agg.slot]).combine_chunks())
        if self.plugin:
            group_ids = None
            if ngroups > 1:
                lists = grouped.column("__row_list").combine_chunks()
                order = pc.sort_indices(pc.list_flatten(lists))
                group_ids = pc.list_parent_indices(lists).take(order).cast(pa.int32())
            for agg in self.plugin:
                assert agg.use is not None
                args = [pa.repeat(a.const, 1) if a.is_const else as_array(broadcast(a.eval(rows), n)) for a in agg.args]
                names.append(agg.slot)
                arrays.append(agg.use.aggregate(args, n, group_ids, ngroups))
        return [Chunk(pa.RecordBatch.from_arrays(arrays, names=names), chunk.start, chunk.end)]

    def _spread(self, rows: pa.RecordBatch, grouped: pa.Table, outputs: dict[str, str]) -> pa.RecordBatch:
        """Every row of the window (one group), with each aggregate's result repeated."""
        n = rows.num_rows
        names = list(rows.schema.names)
        arrays = list(rows.columns)
        for agg in self.builtin:
            names.append(agg.slot)
            arrays.append(pa.repeat(grouped.column(outputs[agg.slot])[0], n))
        for agg in self.plugin:
            assert agg.use is not None
            args = [pa.repeat(a.const, 1) if a.is_const else as_array(broadcast(a.eval(rows), n)) for a in agg.args]
            names.append(agg.slot)
            arrays.append(pa.repeat(agg.use.aggregate(args, n, None, 1)[0], n))
        return pa.RecordBatch.from_arrays(arrays, names=names)


class OrderStage(Stage):
    kind = "order"

    def __init__(self, index: int, keys: list[tuple[Expr, bool]]) -> None:
        super().__init__(index)
        self.keys = keys

    def run(self, chunk: Chunk) -> list[Chunk]:
        b = chunk.batch
        n = b.num_rows
        table = pa.table({f"k{i}": broadcast(e.eval(b), n) for i, (e, _) in enumerate(self.keys)})
        order = pc.sort_indices(
            table, sort_keys=[(f"k{i}", "descending" if desc else "ascending") for i, (_, desc) in enumerate(self.keys)]
        )
        return [Chunk(b.take(order), chunk.start, chunk.end)]


class LimitStage(Stage):
    kind = "limit"

    def __init__(self, index: int, limit: int) -> None:
        super().__init__(index)
        self.limit = limit

    def run(self, chunk: Chunk) -> list[Chunk]:
        b = chunk.batch.slice(0, self.limit)
        return [Chunk(b, chunk.start, chunk.end)] if b.num_rows else []


class ProjectStage(Stage):
    kind = "project"

    def __init__(self, index: int, plan: QueryPlan) -> None:
        super().__init__(index)
        self.star = plan.star
        self.fields = [(f.name, f.expr.eval) for f in plan.fields]
        self.names = {f.name for f in plan.fields}

    def run(self, chunk: Chunk) -> list[Chunk]:
        b = chunk.batch
        n = b.num_rows
        names: list[str] = []
        arrays: list[pa.Array] = []
        if self.star:
            for i, f in enumerate(b.schema):
                if not f.name.startswith("__") and f.name not in self.names:
                    names.append(f.name)
                    arrays.append(b.column(i))
        for name, fn in self.fields:
            try:
                value = fn(b)
            except Exception as exc:
                raise StageError(f"field '{name}': {exc}") from exc
            names.append(name)
            arrays.append(broadcast(value, n))
        return [Chunk(pa.RecordBatch.from_arrays(arrays, names=names), chunk.start, chunk.end)]


class WindowStage:
    """Stamps rows with their time, holds them in the window assigner, emits closed windows.

    Processing time: a batch's rows carry its arrival time and the clock's ticks move time on.
    Event time: rows carry their TIMESTAMP column; the watermark (newest timestamp seen minus
    ``lateTolerance``) moves time on, and rows older than the watermark are dropped as late
    (counted in ``records_late_total``)."""

    kind = "window"

    def __init__(self, index: int, plan: QueryPlan, event_time: bool, late_tolerance_ms: int,
                 max_rows: int = 1_000_000, max_bytes: int = 256 << 20) -> None:
        assert plan.window is not None
        self.metrics = NodeMetrics(f"op_{index}_window_0")
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.on_dropped: Callable[[int], None] | None = None
        self.assigner: WindowAssigner = make_assigner(plan.window)
        self.time_column = plan.stream.timestamp if event_time and plan.window.is_time else None
        self.tolerance = late_tolerance_ms
        self.watermark: int | None = None

    def on_batch(self, batch: pa.RecordBatch, arrival_ms: int) -> list[Window]:
        closed = self._take(batch, arrival_ms)
        dropped = self.assigner.cap(self.max_rows, self.max_bytes)
        if dropped:
            self.metrics.add("records_dropped_total", dropped)
            if self.on_dropped is not None:
                self.on_dropped(dropped)
        return closed

    def _take(self, batch: pa.RecordBatch, arrival_ms: int) -> list[Window]:
        n = batch.num_rows
        if self.time_column is None:
            return self.assigner.add(batch, pa.repeat(pa.scalar(arrival_ms, pa.int64()), n), arrival_ms)
        ts = _millis(
            batch.column(self.time_column)
            if batch.schema.get_field_index(self.time_column) >= 0
            else pa.nulls(n, pa.int64())
        )
        keep = pc.is_valid(ts)
        if self.watermark is not None:
            keep = pc.and_(keep, pc.greater_equal(ts, self.watermark))
        kept = batch.filter(keep)
        late = n - kept.num_rows
        if late:
            self.metrics.add("records_late_total", late)
        if kept.num_rows == 0:
            return []
        ts = ts.filter(keep)
        newest = pc.max(ts).as_py() - self.tolerance
        self.watermark = newest if self.watermark is None else max(self.watermark, newest)
        return self.assigner.add(kept, ts, self.watermark)

    def on_tick(self, now_ms: int) -> list[Window]:
        if self.time_column is not None:
            return []
        return self.assigner.advance(now_ms)

    def on_end(self) -> list[Window]:
        return self.assigner.flush()


def _millis(column: pa.Array) -> pa.Array:
    t = column.type
    if pa.types.is_timestamp(t):
        return pc.cast(pc.cast(column, pa.timestamp("ms"), safe=False), pa.int64())
    return pc.cast(column, pa.int64())


class Pipeline:
    """The stages of one rule. Not thread-safe: one thread runs it."""

    def __init__(self, plan: QueryPlan, *, event_time: bool = False, late_tolerance_ms: int = 0,
                 window_max_rows: int = 1_000_000, window_max_bytes: int = 256 << 20) -> None:
        self.plan = plan
        self.window: WindowStage | None = None
        self.before: list[Stage] = []  # stages before the window (all stages when there is none)
        self.after: list[Stage] = []  # stages after the window
        index = iter(range(1, 100))
        window = plan.window
        if plan.where is not None and (window is None or window.is_time):
            self.before.append(FilterStage(next(index), plan.where))
        if window is not None:
            self.window = WindowStage(next(index), plan, event_time, late_tolerance_ms,
                                      window_max_rows, window_max_bytes)
            if plan.where is not None and not window.is_time:
                self.after.append(FilterStage(next(index), plan.where))
            if plan.grouped or plan.spread:
                self.after.append(AggregateStage(next(index), plan))
            if plan.having is not None:
                self.after.append(FilterStage(next(index), plan.having, kind="having"))
        tail = self.after if window is not None else self.before
        if plan.order:
            tail.append(OrderStage(next(index), plan.order))
        if plan.limit is not None:
            tail.append(LimitStage(next(index), plan.limit))
        tail.append(ProjectStage(next(index), plan))
        #: called with (node metrics, exception) when a stage fails; the rule logs it
        self.on_error: Callable[[NodeMetrics, BaseException], None] | None = None

    @property
    def nodes(self) -> list[NodeMetrics]:
        middle = [self.window.metrics] if self.window is not None else []
        return [s.metrics for s in self.before] + middle + [s.metrics for s in self.after]

    def on_batch(self, batch: pa.RecordBatch, arrival_ms: int) -> list[pa.RecordBatch]:
        chunks = self._through(self.before, [Chunk(batch)])
        if self.window is None:
            return [c.batch for c in chunks]
        out: list[pa.RecordBatch] = []
        for c in chunks:
            out += self._windows(lambda w=self.window, b=c.batch: w.on_batch(b, arrival_ms), c.batch.num_rows)
        return out

    def on_tick(self, now_ms: int) -> list[pa.RecordBatch]:
        if self.window is None:
            return []
        return self._windows(lambda w=self.window: w.on_tick(now_ms), 0)

    def on_end(self) -> list[pa.RecordBatch]:
        if self.window is None:
            return []
        return self._windows(self.window.on_end, 0)

    def _windows(self, step: Callable[[], list[Window]], rows_in: int) -> list[pa.RecordBatch]:
        assert self.window is not None
        m = self.window.metrics
        started = m.begin(rows_in)
        try:
            windows = step()
        except Exception as exc:
            self._failed(m, exc)
            return []
        finally:
            m.buffer_length = self.window.assigner.pending
        m.end(started, sum(w.rows.num_rows for w in windows))
        out: list[pa.RecordBatch] = []
        for w in windows:
            self.plan.bounds.start, self.plan.bounds.end = w.start, w.end
            out += [c.batch for c in self._through(self.after, [Chunk(w.rows, w.start, w.end)])]
        return out

    def _through(self, stages: list[Stage], chunks: list[Chunk]) -> list[Chunk]:
        for stage in stages:
            m = stage.metrics
            produced: list[Chunk] = []
            for chunk in chunks:
                started = m.begin(chunk.batch.num_rows)
                try:
                    result = stage.run(chunk)
                except Exception as exc:
                    self._failed(m, exc)
                    continue
                m.end(started, result[0].batch.num_rows if len(result) == 1 else sum(c.batch.num_rows for c in result))
                produced += result
            chunks = produced
            if not chunks:
                break
        return chunks

    def _failed(self, metrics: NodeMetrics, exc: BaseException) -> None:
        metrics.error(exc)
        if self.on_error is not None:
            self.on_error(metrics, exc)


__all__ = ["Chunk", "Pipeline", "StageError", "WindowStage"]
