"""The rows of a table, kept up to date by its source, for JOINs to read.

A table (``CREATE TABLE``) is fed by its source like a stream, but its rows are state, not
events: each rule that joins it keeps a :class:`TableState` (eKuiper's tables are per rule as
well), which its source's batches update and the rule's join reads as one Arrow batch.

- With a ``KEY`` (required for ``KIND="lookup"``) a row replaces the row of the same key: the
  table is the newest row of every key. Rows with a null key are not kept.
- Without one (a scan table) the table is the newest rows, up to ``RETAIN_SIZE``.
- A memory sink with eKuiper's ``rowkindField`` marks its batches: a row whose kind is
  ``delete`` removes the row of its key (deletes of a batch apply before its other rows).

Either way the table holds at most :data:`~.stream_checks.MAX_TABLE_ROWS` rows, the oldest
going first. An update is vectorised: the new batch is appended and, with a key, the last row
of each key is taken (one group-by over the table), so it costs the table's size per batch,
not Python per row. A join reads :meth:`TableState.rows`, which is replaced, never changed,
so the source's thread and the rule's operators need no lock.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from plutino.io.memory import ROWKIND_META

from .stream_checks import MAX_TABLE_ROWS
from .stream_def import StreamDef
from .windows import concat_batches

_ROW = "__row"
# constants as Arrow scalars: a Python value given to a compute function is converted each
# call, by type inference that costs ~70 us when numpy is not installed
_ZERO = pa.scalar(0, pa.int64())
_DELETE = pa.scalar("delete", pa.string())


class TableState:
    """The current rows of ``table`` (None until its source gave any)."""

    def __init__(self, table: StreamDef) -> None:
        self.table = table
        self.key = table.key
        self.limit = min(table.retain_size or MAX_TABLE_ROWS, MAX_TABLE_ROWS)
        self.rows: pa.RecordBatch | None = None
        self.complete = False  # its source ended (a bounded source: a file read to its end)
        self._index: tuple[pa.RecordBatch, KeyIndex | None] | None = None

    def key_index(self) -> "KeyIndex | None":
        """The KEY column's values sorted, for a lookup by searchsorted (built once per
        update, on the first join after it); None when the key is not a number."""
        rows = self.rows
        cached = self._index
        if cached is not None and cached[0] is rows:
            return cached[1]
        index = KeyIndex.of(rows.column(rows.schema.get_field_index(self.key))) if (
            rows is not None and self.key is not None and self.key in rows.schema.names) else None
        self._index = (rows, index) if rows is not None else None
        return index

    def update(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        kind_field = (batch.schema.metadata or {}).get(ROWKIND_META)
        if kind_field is not None and self.key is not None:
            batch = self._delete(batch, kind_field.decode())
            if batch.num_rows == 0:
                return
        rows = batch if self.rows is None else concat_batches([self.rows, batch])
        if self.key is not None:
            rows = _newest_per_key(rows, self.key)
        if rows.num_rows > self.limit:
            rows = rows.slice(rows.num_rows - self.limit)
        self.rows = rows


    def _delete(self, batch: pa.RecordBatch, kind_field: str) -> pa.RecordBatch:
        """Remove the rows whose key a row of kind "delete" names (eKuiper's rowkindField, set
        by a memory sink); return the other rows (inserts and updates)."""
        i = batch.schema.get_field_index(kind_field)
        if i < 0:
            return batch
        deleting = pc.fill_null(pc.equal(pc.utf8_lower(pc.cast(batch.column(i), pa.string())), _DELETE), False)
        if not pc.any(deleting).as_py():
            return batch
        k = batch.schema.get_field_index(self.key or "")
        if self.rows is not None and k >= 0:
            gone = batch.column(k).filter(deleting)
            current = self.rows.column(self.rows.schema.get_field_index(self.key or ""))
            self.rows = self.rows.filter(pc.invert(pc.fill_null(pc.is_in(current, value_set=gone), False)))
        return batch.filter(pc.invert(deleting))


class KeyIndex:
    """A table's unique, non-null integer keys within a span of at most :data:`DENSE_SPAN`
    times their number (ids, codes), as a direct-address array: position ``key - low`` holds
    the key's row number (null where there is no such key). A probe is one subtraction and one
    ``take`` per batch, with no hash table built per batch; the array is built once per update."""

    def __init__(self, low: pa.Scalar, dense: pa.Array, type_: pa.DataType) -> None:
        self.low = low
        self.dense = dense
        self.size = pa.scalar(len(dense), pa.int64())
        self.type = type_

    @classmethod
    def of(cls, column: pa.Array) -> "KeyIndex | None":
        """The index of ``column``, or None when its keys are not compact integers (such a
        table is joined by a hash join instead)."""
        t = column.type
        if not pa.types.is_integer(t) or column.null_count or len(column) == 0:
            return None
        bounds = pc.min_max(column)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if high - low >= DENSE_SPAN * len(column) + 64:
            return None
        span = pc.add(row_numbers(high - low + 1), pa.scalar(low, pa.int64()))
        dense = pc.index_in(span, value_set=pc.cast(column, pa.int64()))  # row i holds key i: its row
        return cls(pa.scalar(low, pa.int64()), pc.cast(dense, pa.int64()), t)

    def probe(self, keys: pa.Array) -> pa.Array:
        """The row number of each key (null where the table has none)."""
        if pa.types.is_floating(keys.type):  # whole numbers only; 3.5 matches nothing
            whole = pc.equal(pc.floor(keys), keys)
            keys = pc.if_else(whole, keys, pa.scalar(None, keys.type))
        offset = pc.subtract(pc.cast(keys, pa.int64(), safe=False), self.low)
        inside = pc.and_(pc.greater_equal(offset, _ZERO), pc.less(offset, self.size))
        return pc.take(self.dense, pc.if_else(inside, offset, pa.scalar(None, pa.int64())))


_ROWS: list[pa.Array] = [pa.array([], pa.int64())]


def row_numbers(n: int) -> pa.Array:
    """0, 1, ..., n - 1 as int64 (a slice of one array kept and grown as needed)."""
    rows = _ROWS[0]
    if len(rows) < n:
        size = max(n, 2 * len(rows), 1024)
        rows = pc.subtract(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), size)), pa.scalar(1, pa.int64()))
        _ROWS[0] = rows
    return rows.slice(0, n)


#: integer keys spread over at most this many times their number get a direct-address index
DENSE_SPAN = 4


def _newest_per_key(rows: pa.RecordBatch, key: str) -> pa.RecordBatch:
    """The last row of each non-null ``key``, in the order of those last rows."""
    i = rows.schema.get_field_index(key)
    if i < 0:
        return rows.slice(0, 0)
    table = pa.table({"k": rows.column(i), _ROW: row_numbers(rows.num_rows)})
    last = table.filter(pc.is_valid(table.column("k"))).group_by("k", use_threads=False).aggregate([(_ROW, "max")])
    picked = last.column(f"{_ROW}_max").combine_chunks()
    return rows.take(pc.take(picked, pc.array_sort_indices(picked)))


__all__ = ["KeyIndex", "TableState", "row_numbers"]
