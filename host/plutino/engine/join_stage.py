"""Running a rule's JOINs on Arrow batches (:mod:`.join_plan` plans them).

The operator gets the rows of its inputs with qualified column names (``s.id``, ``t.name``):

- without a window, a batch of the primary stream; each table's current rows come from its
  :class:`~.tables.TableState`;
- with one, a closed window holding the rows of every joined stream, told apart by their
  :data:`~.join_plan.SIDE` column.

Each JOIN is a hash join of row numbers: the key expressions run once on each side, pyarrow's
hash join pairs the row numbers of equal keys, and both sides' columns are taken by those
numbers. Any column type can be carried (Acero's join itself cannot carry lists or structs),
the output keeps the order of the left rows, and nothing runs per row in Python.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from .expr import broadcast
from .join_plan import SIDE, JoinInput, JoinPlan, JoinSpec
from .stages import Chunk, Stage, StageError
from .tables import KeyIndex, TableState, row_numbers

_ACERO = {"inner": "inner", "cross": "inner", "left": "left outer", "right": "right outer", "full": "full outer"}


class JoinStage(Stage):
    kind = "join"

    def __init__(self, index: int, plan: JoinPlan, windowed: bool) -> None:
        super().__init__(index)
        self.plan = plan
        self.windowed = windowed
        #: the rule's tables by qualifier (set when the rule starts and its tables exist)
        self.tables: dict[str, TableState] = {}

    def run(self, chunk: Chunk) -> list[Chunk]:
        plan = self.plan
        batch = chunk.batch
        if self.windowed:
            inputs = {name: side_rows(batch, i, name) for i, name in enumerate(i.name for i in plan.inputs)
                      if not plan.inputs[i].source.is_table}
            rows = inputs[plan.primary.name]
        else:
            inputs, rows = {}, batch
        for spec in plan.joins:
            right = inputs.get(spec.right.name)
            state = self.tables.get(spec.right.name) if right is None else None
            if right is None:
                right = self._table_rows(spec.right)
            index = state.key_index() if state is not None and spec.kind in ("inner", "left") and (
                spec.right_column is not None and spec.right_column == state.key) else None
            try:
                rows = join(rows, right, spec) if index is None else lookup(rows, right, spec, index)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise StageError(f"JOIN {spec.right.name}: {exc}") from exc
            if rows.num_rows == 0 and spec.kind in ("inner", "left", "cross"):
                return []
        return [Chunk(rows, chunk.start, chunk.end)] if rows.num_rows else []

    def _table_rows(self, table: JoinInput) -> pa.RecordBatch:
        state = self.tables.get(table.name)
        rows = state.rows if state is not None else None
        if rows is None:  # nothing from its source yet: no rows, and its columns when declared
            schema = table.source.schema
            rows = pa.RecordBatch.from_pylist([], schema=schema) if schema is not None else pa.record_batch({})
        return qualify(rows, table.name)


def qualify(rows: pa.RecordBatch, name: str) -> pa.RecordBatch:
    """``rows`` with its columns named ``"<name>.<column>"`` (metadata columns keep theirs)."""
    return rows.rename_columns([c if c.startswith("__") else f"{name}.{c}" for c in rows.schema.names])


def side_rows(window: pa.RecordBatch, side: int, name: str) -> pa.RecordBatch:
    """The rows of input number ``side`` in a window of a stream-stream join, with its columns."""
    i = window.schema.get_field_index(SIDE)
    rows = window.filter(pc.equal(window.column(i), pa.scalar(side, pa.int8()))) if i >= 0 else window.slice(0, 0)
    prefix = f"{name}."
    keep = [n for n in rows.schema.names if n.startswith(prefix)]
    return rows.select(keep)


def join(left: pa.RecordBatch, right: pa.RecordBatch, spec: JoinSpec) -> pa.RecordBatch:
    """``left`` JOIN ``right`` as ``spec`` says, in the order of the left rows."""
    n, m = left.num_rows, right.num_rows
    if spec.kind == "cross":
        lkeys, rkeys = [pa.repeat(pa.scalar(0, pa.int8()), n)], [pa.repeat(pa.scalar(0, pa.int8()), m)]
    else:
        lkeys = [broadcast(k.eval(left), n) for k in spec.left_keys]
        rkeys = [broadcast(k.eval(right), m) for k in spec.right_keys]
        comparable = [_comparable(a, b) for a, b in zip(lkeys, rkeys)]
        lkeys, rkeys = [c[0] for c in comparable], [c[1] for c in comparable]
    lt = pa.table({**{f"l{i}": k for i, k in enumerate(lkeys)}, "__l": row_numbers(n)})
    rt = pa.table({**{f"r{i}": k for i, k in enumerate(rkeys)}, "__r": row_numbers(m)})
    pairs = lt.join(rt, keys=[f"l{i}" for i in range(len(lkeys))], right_keys=[f"r{i}" for i in range(len(rkeys))],
                    join_type=_ACERO[spec.kind], use_threads=False)
    pairs = pairs.sort_by([("__l", "ascending"), ("__r", "ascending")])
    li, ri = pairs.column("__l").combine_chunks(), pairs.column("__r").combine_chunks()
    taken_l, taken_r = left.take(li), right.take(ri)
    out = pa.RecordBatch.from_arrays([*taken_l.columns, *taken_r.columns],
                                     names=[*left.schema.names, *right.schema.names])
    return _residual(out, spec)


def lookup(left: pa.RecordBatch, right: pa.RecordBatch, spec: JoinSpec, index: KeyIndex) -> pa.RecordBatch:
    """``left`` JOIN ``right`` on a table's unique KEY: each left row matches at most one
    right row, found by ``index`` (a sorted-key probe, not a hash table built per batch)."""
    n = left.num_rows
    keys = broadcast(spec.left_keys[0].eval(left), n)
    if not (pa.types.is_integer(keys.type) or pa.types.is_floating(keys.type) or pa.types.is_null(keys.type)):
        return join(left, right, spec)  # not a number (a string id, say): as any other join
    at = index.probe(keys)
    if spec.kind == "inner":
        hit = at.is_valid()
        left, at = left.filter(hit), at.filter(hit)
    taken = right.take(at)
    out = pa.RecordBatch.from_arrays([*left.columns, *taken.columns], names=[*left.schema.names, *right.schema.names])
    return _residual(out, spec)


def _residual(out: pa.RecordBatch, spec: JoinSpec) -> pa.RecordBatch:
    """The joined rows that pass the rest of ON (an INNER or CROSS join's non-key conditions)."""
    if spec.residual is None or not out.num_rows:
        return out
    mask = spec.residual.eval(out)
    if isinstance(mask, pa.Scalar):
        return out if mask.as_py() else out.slice(0, 0)
    return out.filter(mask)


def _comparable(a: pa.Array, b: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Two key arrays of one type: a number with a number as float64 when their types differ,
    anything else as strings (a column missing from a schemaless side is all null)."""
    if a.type == b.type:
        return a, b
    if pa.types.is_null(a.type):
        return pc.cast(a, b.type), b
    if pa.types.is_null(b.type):
        return a, pc.cast(b, a.type)
    numeric = (pa.types.is_integer, pa.types.is_floating)
    if any(f(a.type) for f in numeric) and any(f(b.type) for f in numeric):
        return pc.cast(a, pa.float64()), pc.cast(b, pa.float64())
    return pc.cast(a, pa.string()), pc.cast(b, pa.string())


__all__ = ["JoinStage", "join", "qualify", "side_rows"]
