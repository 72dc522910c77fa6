"""Windows: which rows are emitted together, and when.

A window assigner holds rows with their timestamps (milliseconds) and is told the time:
``add(rows, ts)`` when rows arrive and ``advance(now)`` when time passes — the processing
clock in processing-time rules, the watermark in event-time rules. Each returns the windows
that closed, oldest first. ``flush()`` closes everything (a bounded stream ended).

Time windows align to the epoch (UTC), as eKuiper aligns them to the clock: a 10-second
tumbling window covers [10k, 10k+10) seconds. A window with no rows is not emitted.

- tumbling(size): [k*size, (k+1)*size), emitted when time reaches its end.
- hopping(size, hop): [k*hop, k*hop+size), emitted when time reaches its end.
- sliding(size): one window per row, emitted when time reaches the row's timestamp t:
  the rows with timestamps in (t-size, t] that came before it, and itself.
- session(size, timeout): rows closer than ``timeout`` to the previous one, cut at multiples of
  ``size`` (the maximum duration); emitted ``timeout`` after its last row or at that multiple.
- count(size, hop): every ``hop`` rows, the last ``size`` rows (none before ``size`` arrived).

Rows are kept in one Arrow batch sorted by timestamp (stable, so arrival order breaks ties);
finding a window's rows is a vectorized comparison and a zero-copy slice.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from .planner import WindowSpec

FOREVER = 2**62


@dataclass
class Window:
    rows: pa.RecordBatch
    start: int
    end: int


def concat_batches(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    """One batch from several; schemas that differ (schemaless streams) are unified, missing
    columns filled with nulls."""
    batches = [b for b in batches if b is not None]
    if len(batches) == 1:
        return batches[0]
    first = batches[0].schema
    if all(b.schema.equals(first) for b in batches[1:]):
        return pa.concat_batches(batches)
    table = pa.concat_tables([pa.Table.from_batches([b]) for b in batches], promote_options="permissive")
    return (
        table.combine_chunks().to_batches()[0]
        if table.num_rows
        else pa.RecordBatch.from_pylist([], schema=table.schema)
    )


class _Rows:
    """Rows sorted by timestamp, with their timestamps (int64 ms)."""

    def __init__(self) -> None:
        self.batch: pa.RecordBatch | None = None
        self.ts: pa.Array = pa.array([], pa.int64())

    def __len__(self) -> int:
        return len(self.ts)

    def add(self, batch: pa.RecordBatch, ts: pa.Array) -> None:
        if batch.num_rows == 0:
            return
        if self.batch is None or len(self.ts) == 0:
            in_order = _sorted(ts)
            self.batch, self.ts = batch, ts
        else:
            in_order = pc.min(ts).as_py() >= pc.max(self.ts).as_py() and _sorted(ts)
            self.batch = concat_batches([self.batch, batch])
            self.ts = pa.concat_arrays([self.ts, ts])
        if not in_order:
            order = pc.sort_indices(self.ts)  # stable: arrival order breaks ties
            self.batch = self.batch.take(order)
            self.ts = self.ts.take(order)

    def first_ts(self) -> int:
        return self.ts[0].as_py()

    def count_before(self, t: int) -> int:
        """How many rows have a timestamp < t."""
        return int(pc.sum(pc.less(self.ts, t)).as_py() or 0)

    def slice(self, lo: int, hi: int) -> pa.RecordBatch:
        assert self.batch is not None
        return self.batch.slice(lo, hi - lo)

    def range(self, start: int, end: int) -> pa.RecordBatch:
        """Rows with start <= ts < end."""
        lo, hi = self.count_before(start), self.count_before(end)
        return self.slice(lo, hi)

    def drop_first(self, n: int) -> None:
        if n <= 0:
            return
        if n >= len(self.ts):
            self.batch, self.ts = None, pa.array([], pa.int64())
            return
        assert self.batch is not None
        self.batch = self.batch.slice(n)
        self.ts = self.ts.slice(n)

    def drop_before(self, t: int) -> None:
        self.drop_first(self.count_before(t))


def _sorted(ts: pa.Array) -> bool:
    if len(ts) < 2:
        return True
    return bool(pc.all(pc.less_equal(ts.slice(0, len(ts) - 1), ts.slice(1))).as_py())


class WindowAssigner:
    """Base: rows in, closed windows out."""

    def __init__(self, spec: WindowSpec) -> None:
        self.spec = spec
        self.rows = _Rows()

    def add(self, batch: pa.RecordBatch, ts: pa.Array, now: int) -> list[Window]:
        """Take rows stamped ``ts`` and return what closes at time ``now``."""
        self.rows.add(batch, ts)
        return self.advance(now)

    def advance(self, now: int) -> list[Window]:
        raise NotImplementedError

    def flush(self) -> list[Window]:
        return self.advance(FOREVER)

    @property
    def pending(self) -> int:
        """Rows held (the window operator's buffer length)."""
        return len(self.rows)

    def cap(self, max_rows: int, max_bytes: int) -> int:
        """Drop the oldest rows held beyond ``max_rows`` rows or ``max_bytes`` bytes; return how
        many were dropped. A window that never closes over a fast source must not hold memory
        without bound (a count window holds ``size`` rows at most: it is never capped)."""
        held = len(self.rows)
        if held == 0 or not self.spec.is_time:
            return 0
        excess = held - max_rows
        assert self.rows.batch is not None
        size = self.rows.batch.nbytes
        if size > max_bytes:
            excess = max(excess, -(-(size - max_bytes) * held // size))  # whole rows, rounded up
        if excess <= 0:
            return 0
        self.rows.drop_first(excess)
        return excess


class Tumbling(WindowAssigner):
    def advance(self, now: int) -> list[Window]:
        out = []
        size = self.spec.size
        while len(self.rows):
            start = self.rows.first_ts() // size * size
            end = start + size
            if end > now:
                break
            n = self.rows.count_before(end)
            out.append(Window(self.rows.slice(0, n), start, end))
            self.rows.drop_first(n)
        return out


class Hopping(WindowAssigner):
    def __init__(self, spec: WindowSpec) -> None:
        super().__init__(spec)
        self.next_end: int | None = None

    def advance(self, now: int) -> list[Window]:
        out = []
        size, hop = self.spec.size, self.spec.hop
        while len(self.rows):
            t = self.rows.first_ts()
            first_end = ((t - size) // hop + 1) * hop + size  # the earliest window holding t
            end = first_end if self.next_end is None else max(self.next_end, first_end)
            if end > now:
                break
            start = end - size
            rows = self.rows.range(start, end)
            if rows.num_rows:
                out.append(Window(rows, start, end))
            self.next_end = end + hop
            self.rows.drop_before(self.next_end - size)
        return out


class Sliding(WindowAssigner):
    def __init__(self, spec: WindowSpec) -> None:
        super().__init__(spec)
        self.triggered = 0  # rows at the front of the buffer whose window was emitted

    def advance(self, now: int) -> list[Window]:
        if len(self.rows) == self.triggered:
            return []
        size = self.spec.size
        ts = self.rows.ts.to_pylist()
        last = bisect.bisect_right(ts, now)
        out = []
        for j in range(self.triggered, last):
            t = ts[j]
            lo = bisect.bisect_right(ts, t - size)
            out.append(Window(self.rows.slice(lo, j + 1), t - size, t))
        if last > self.triggered:
            self.triggered = last
            keep_from = bisect.bisect_right(ts, ts[last - 1] - size)  # no later window reaches back further
            self.rows.drop_first(keep_from)
            self.triggered -= keep_from
        return out


class Session(WindowAssigner):
    def advance(self, now: int) -> list[Window]:
        out = []
        size, timeout = self.spec.size, self.spec.timeout
        while len(self.rows):
            ts = self.rows.ts
            start = ts[0].as_py()
            checkpoint = (start // size + 1) * size
            cut = len(ts)
            if len(ts) > 1:
                gap = pc.greater_equal(pc.subtract(ts.slice(1), ts.slice(0, len(ts) - 1)), timeout)
                past = pc.greater_equal(ts.slice(1), checkpoint)
                i = pc.index(pc.or_(gap, past), True).as_py()
                if i >= 0:
                    cut = i + 1
            last = ts[cut - 1].as_py()
            close = min(last + timeout, checkpoint)
            if close > now:
                break
            out.append(Window(self.rows.slice(0, cut), start, close))
            self.rows.drop_first(cut)
        return out


class Count(WindowAssigner):
    def __init__(self, spec: WindowSpec) -> None:
        super().__init__(spec)
        self.seen = 0  # rows received in all
        self.base = 0  # global index of the first row held

    def add(self, batch: pa.RecordBatch, ts: pa.Array, now: int) -> list[Window]:
        if batch.num_rows == 0:
            return []
        # arrival order, not time order: append without sorting
        if self.rows.batch is None or len(self.rows.ts) == 0:
            self.rows.batch, self.rows.ts = batch, ts
        else:
            self.rows.batch = concat_batches([self.rows.batch, batch])
            self.rows.ts = pa.concat_arrays([self.rows.ts, ts])
        before, self.seen = self.seen, self.seen + batch.num_rows
        size, hop = self.spec.size, self.spec.hop
        out = []
        c = (before // hop + 1) * hop
        while c <= self.seen:
            if c >= size:
                lo, hi = c - size - self.base, c - self.base
                rows = self.rows.slice(lo, hi)
                out.append(Window(rows, self.rows.ts[lo].as_py(), self.rows.ts[hi - 1].as_py()))
            c += hop
        keep = min(len(self.rows), size)
        drop = len(self.rows) - keep
        self.rows.drop_first(drop)
        self.base += drop
        return out

    def advance(self, now: int) -> list[Window]:
        return []

    def flush(self) -> list[Window]:
        return []  # a count window is emitted only full


def make_assigner(spec: WindowSpec) -> WindowAssigner:
    return {"tumbling": Tumbling, "hopping": Hopping, "sliding": Sliding, "session": Session, "count": Count}[
        spec.kind
    ](spec)


__all__ = ["FOREVER", "Window", "WindowAssigner", "concat_batches", "make_assigner"]
