"""The operators of a rule, from the source's batches to the sinks' batches.

A :class:`Pipeline` is built from a :class:`~plutino.engine.planner.QueryPlan` and run by one
thread: it receives the stream's batches (with their arrival time), clock ticks and the end
of a bounded stream, and returns the batches to send to the sinks. Its stages, in order:

    without a window:  filter -> project [-> order -> limit]
    with a window:     filter (time windows) -> window -> filter (count windows) ->
                       aggregate (when grouped) -> having -> order -> limit -> project

Each stage works on whole Arrow batches and keeps eKuiper-style metrics. A stage that fails
(a plugin function raising, a value pyarrow cannot cast) counts the exception, drops that
window, and the pipeline carries on with the next one. Outside a window, a failing filter or
projection drops only the rows that fail, as eKuiper (which runs such rules row by row) does:
the batch is halved until the failing rows are found, a cost paid only when a batch fails.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

from plutino.errors import PluginCallError

from .join_stage import JoinStage
from .metrics import NodeMetrics
from .planner import QueryPlan
from .schema_watch import SchemaWatch
from .stages import (
    ISOLATE_RUNS,
    AggregateStage,
    Chunk,
    FilterStage,
    LimitStage,
    OrderStage,
    ProjectStage,
    Stage,
    StageError,
)
from .windows import Window, WindowAssigner, make_assigner


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


class RuleStopped(Exception):
    """An error after which the rule cannot go on (the runtime stops it with this message)."""


def _about_rows(exc: BaseException | None) -> bool:
    """False for a plugin that broke the contract or failed in itself (not PLUTINO_INVALID):
    calling it again on parts of the batch would only repeat that."""
    while exc is not None:
        if isinstance(exc, PluginCallError):
            return exc.status == "PLUTINO_INVALID"
        exc = exc.__cause__
    return True


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
        #: the JOINs (a WHERE runs on the joined rows, after them)
        self.join = JoinStage(next(index), plan.join, window is not None) if plan.join is not None else None
        if self.join is not None and window is None:
            self.before.append(self.join)
        if plan.where is not None and self.join is None and (window is None or window.is_time):
            self.before.append(FilterStage(next(index), plan.where))
        if self.join is not None and window is None and plan.where is not None:
            self.before.append(FilterStage(next(index), plan.where))
        if window is not None:
            self.window = WindowStage(next(index), plan, event_time, late_tolerance_ms,
                                      window_max_rows, window_max_bytes)
            if self.join is not None:
                self.after.append(self.join)
            if plan.where is not None and (self.join is not None or not window.is_time):
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
        #: a schemaless stream's first batches checked against the plan (set by the rule's maker)
        self.watch: SchemaWatch | None = None

    @property
    def nodes(self) -> list[NodeMetrics]:
        middle = [self.window.metrics] if self.window is not None else []
        return [s.metrics for s in self.before] + middle + [s.metrics for s in self.after]

    def on_batch(self, batch: pa.RecordBatch, arrival_ms: int) -> list[pa.RecordBatch]:
        self.plan.bounds.arrival = arrival_ms
        watch = self.watch
        if watch is not None and not watch.done:
            error = watch.on_batch(batch)
            if error is not None:  # the rule cannot work on these rows: it stops (see schema_watch)
                self._failed(self.nodes[0], RuleStopped(error))
                return []
        chunks = self._through(self.before, [Chunk(batch)])
        if self.window is None:
            return [c.batch for c in chunks]
        out: list[pa.RecordBatch] = []
        for c in chunks:
            out += self._windows(partial(self.window.on_batch, c.batch, arrival_ms), c.batch.num_rows)
        return out

    def on_tick(self, now_ms: int) -> list[pa.RecordBatch]:
        if self.window is None:
            return []
        return self._windows(partial(self.window.on_tick, now_ms), 0)

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
                    if not (stage.rowwise and chunk.start is None and chunk.batch.num_rows > 1
                            and _about_rows(exc)):
                        self._failed(m, exc)
                        continue
                    result = self._isolate(stage, chunk.batch, [ISOLATE_RUNS])
                m.end(started, result[0].batch.num_rows if len(result) == 1 else sum(c.batch.num_rows for c in result))
                produced += result
            chunks = produced
            if not chunks:
                break
        return chunks

    def _isolate(self, stage: Stage, batch: pa.RecordBatch, runs: list[int]) -> list[Chunk]:
        """``stage`` over the halves of ``batch`` (which failed), down to the rows that fail:
        each failing row (or, past ``runs``, failing part) counts one exception."""
        half = batch.num_rows // 2
        out: list[Chunk] = []
        for part in (batch.slice(0, half), batch.slice(half)):
            runs[0] -= 1
            try:
                out += stage.run(Chunk(part))
            except Exception as exc:
                if part.num_rows > 1 and runs[0] > 0:
                    out += self._isolate(stage, part, runs)
                else:
                    self._failed(stage.metrics, exc)
        return out

    def _failed(self, metrics: NodeMetrics, exc: BaseException) -> None:
        metrics.error(exc)
        if self.on_error is not None:
            self.on_error(metrics, exc)


__all__ = ["Chunk", "Pipeline", "RuleStopped", "StageError", "WindowStage"]
