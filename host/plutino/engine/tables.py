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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from plutino.io.memory import ROWKIND_META

from .stream_checks import MAX_TABLE_ROWS
from .stream_def import StreamDef
from .windows import concat_batches

_ROW = "__row"


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
        deleting = pc.fill_null(pc.equal(pc.utf8_lower(pc.cast(batch.column(i), pa.string())), "delete"), False)
        if not pc.any(deleting).as_py():
            return batch
        k = batch.schema.get_field_index(self.key or "")
        if self.rows is not None and k >= 0:
            gone = batch.column(k).filter(deleting)
            current = self.rows.column(self.rows.schema.get_field_index(self.key or ""))
            self.rows = self.rows.filter(pc.invert(pc.fill_null(pc.is_in(current, value_set=gone), False)))
        return batch.filter(pc.invert(deleting))


class KeyIndex:
    """A table's unique, non-null numeric keys, for finding each key's row without a hash
    table built per batch: integer keys within a span of at most :data:`DENSE_SPAN` times
    their number (ids, codes) go in a direct-address array (one ``take`` per probe); others
    are kept sorted for ``searchsorted``."""

    def __init__(self, values: np.ndarray, type_: pa.DataType) -> None:
        self.type = type_
        self.size = len(values)
        self.dense: np.ndarray | None = None
        self.low = 0
        if self.size and values.dtype.kind in "iu":
            low, high = int(values.min()), int(values.max())
            if high - low < DENSE_SPAN * self.size + 64:
                self.low = low
                self.dense = np.full(high - low + 1, -1, dtype=np.int64)
                self.dense[values - low] = np.arange(self.size, dtype=np.int64)
                return
        order = np.argsort(values, kind="stable")
        self.keys = values[order]
        self.rows = order.astype(np.int64)

    @classmethod
    def of(cls, column: pa.Array) -> "KeyIndex | None":
        t = column.type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t)) or column.null_count:
            return None
        return cls(column.to_numpy(zero_copy_only=False), t)

    def probe(self, keys: pa.Array) -> pa.Array:
        """The row number of each key (null where the table has none)."""
        if self.size == 0:
            return pa.nulls(len(keys), pa.int64())
        if keys.type != self.type:
            keys = pc.cast(keys, self.type if pa.types.is_floating(self.type) else pa.float64(), safe=False)
        found = keys.is_valid().to_numpy(zero_copy_only=False)
        values = pc.fill_null(keys, 0).to_numpy(zero_copy_only=False)
        if self.dense is not None:
            if values.dtype.kind == "f":  # a float probe of integer keys: whole numbers only
                whole = np.floor(values) == values
                found &= whole
                values = np.where(whole, values, 0).astype(np.int64)
            offset = values - self.low
            inside = (offset >= 0) & (offset < len(self.dense))
            at = self.dense[np.where(inside, offset, 0)]
            found &= inside & (at >= 0)
            return pa.array(at, pa.int64(), mask=~found)
        at = np.minimum(np.searchsorted(self.keys, values), self.size - 1)
        found &= self.keys[at] == values
        return pa.array(self.rows[at], pa.int64(), mask=~found)


#: integer keys spread over at most this many times their number get a direct-address index
DENSE_SPAN = 4


def _newest_per_key(rows: pa.RecordBatch, key: str) -> pa.RecordBatch:
    """The last row of each non-null ``key``, in the order of those last rows."""
    i = rows.schema.get_field_index(key)
    if i < 0:
        return rows.slice(0, 0)
    table = pa.table({"k": rows.column(i), _ROW: pa.array(range(rows.num_rows), pa.int64())})
    last = table.filter(pc.is_valid(table.column("k"))).group_by("k", use_threads=False).aggregate([(_ROW, "max")])
    picked = last.column(f"{_ROW}_max").combine_chunks()
    return rows.take(pc.take(picked, pc.array_sort_indices(picked)))


__all__ = ["KeyIndex", "TableState"]
