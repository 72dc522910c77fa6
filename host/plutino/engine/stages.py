"""The stages a rule's batches go through: filter (WHERE and HAVING), aggregate, order,
limit and project. Each works on a whole Arrow batch (a :class:`Chunk`, with the bounds of
the window it came from) and keeps eKuiper-style metrics; :mod:`.pipeline` chains them."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from .expr import Expr, as_array, broadcast
from .metrics import NodeMetrics
from .planner import QueryPlan
from .tables import row_numbers

_FILTER = pc.get_function("filter")


@dataclass
class Chunk:
    """A batch on its way through the stages, with the bounds of the window it came from."""

    batch: pa.RecordBatch
    start: int | None = None
    end: int | None = None


class StageError(Exception):
    """A failure inside a stage, with the part of the query that failed ("field 't2': ...")."""


#: at most this many stage runs to find a failing batch's bad rows; past it, what still
#: fails is dropped whole (a batch where every row fails costs no more than this)
ISOLATE_RUNS = 64


class Stage:
    kind = "stage"
    rowwise = False  # each output row depends only on its own input row

    def __init__(self, index: int) -> None:
        self.metrics = NodeMetrics(f"op_{index}_{self.kind}_0")

    def run(self, chunk: Chunk) -> list[Chunk]:
        raise NotImplementedError


class FilterStage(Stage):
    kind = "filter"
    rowwise = True

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
        cols["__row"] = row_numbers(n)
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
    rowwise = True

    def __init__(self, index: int, plan: QueryPlan) -> None:
        super().__init__(index)
        self.star = plan.star
        self.fields = [(f.name, f.expr.eval) for f in plan.fields]
        self.names = {f.name for f in plan.fields}
        self.joined = plan.join is not None  # SELECT * of a join: "s.id" is "id", the first one wins

    def run(self, chunk: Chunk) -> list[Chunk]:
        b = chunk.batch
        n = b.num_rows
        names: list[str] = []
        arrays: list[pa.Array] = []
        if self.star:
            for i, f in enumerate(b.schema):
                name = f.name.split(".", 1)[-1] if self.joined else f.name
                if not f.name.startswith("__") and name not in self.names and not (self.joined and name in names):
                    names.append(name)
                    arrays.append(b.column(i))
        for name, fn in self.fields:
            try:
                value = fn(b)
            except Exception as exc:
                raise StageError(f"field '{name}': {exc}") from exc
            names.append(name)
            arrays.append(broadcast(value, n))
        return [Chunk(pa.RecordBatch.from_arrays(arrays, names=names), chunk.start, chunk.end)]


__all__ = ["AggregateStage", "Chunk", "FilterStage", "ISOLATE_RUNS", "LimitStage", "OrderStage",
           "ProjectStage", "Stage", "StageError"]
