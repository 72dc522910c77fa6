"""Benchmark: a stream joined with a lookup table, against the same rule without the join.

The rule's operators (:class:`plutino.engine.pipeline.Pipeline`, exactly what a running rule
calls per batch) run over batches of an ``orders (id BIGINT, cust BIGINT, amount FLOAT)``
stream, in the same run and interleaved:

  no join       SELECT o.id, o.amount FROM orders AS o WHERE amount > 0
  lookup join   SELECT o.id, c.name, amount FROM orders AS o LEFT JOIN customers AS c
                ON o.cust = c.id WHERE amount > 0

``customers`` is a lookup table (``KIND="lookup", KEY="id"``) of 1K or 100K rows, filled as
its source would fill it; every order's ``cust`` is one of its keys (all rows match). The
result of the join is checked against pyarrow's own join before timing. It prints rows/s and
"join / no join" (the share of the no-join speed the join keeps).

    python bench/lookup_join.py [--quick] [--stat min|median] [--batches 1024,16384,65536] [--keys 1000,100000]
"""

from __future__ import annotations

import argparse
import sys

import pyarrow as pa
import pyarrow.compute as pc

import _harness as h
from plutino.engine.pipeline import Pipeline
from plutino.engine.planner import plan_query
from plutino.engine.plugin_functions import NoPlugins
from plutino.engine.streams import parse_create_stream
from plutino.engine.tables import TableState

STREAMS = {s.name: s for s in map(parse_create_stream, [
    'CREATE STREAM orders (id BIGINT, cust BIGINT, amount FLOAT) WITH (TYPE="memory", DATASOURCE="o")',
    'CREATE TABLE customers (id BIGINT, name STRING) WITH (TYPE="memory", DATASOURCE="c", KIND="lookup", KEY="id")',
])}
PLAIN = "SELECT o.id, o.amount FROM orders AS o WHERE amount > 0"
JOINED = "SELECT o.id, c.name, amount FROM orders AS o LEFT JOIN customers AS c ON o.cust = c.id WHERE amount > 0"


def orders(rows: int, keys: int, seed: int = 3) -> pa.RecordBatch:
    cust = pc.cast(pc.floor(pc.multiply(pc.random(rows, initializer=seed), keys)), pa.int64())
    amount = pc.add(pc.random(rows, initializer=seed + 1), 0.01)
    return pa.record_batch({"id": pa.array(range(rows), pa.int64()), "cust": cust, "amount": amount})


def pipeline(sql: str, table: TableState | None) -> Pipeline:
    p = Pipeline(plan_query(sql, STREAMS, NoPlugins()))
    if table is not None:
        assert p.join is not None
        p.join.tables["c"] = table
    return p


def qualified(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch as the rule's feed hands it to a JOIN's operators (columns named o.<column>)."""
    return batch.rename_columns([f"o.{n}" for n in batch.schema.names])


def check(out: list[pa.RecordBatch], batch: pa.RecordBatch, names: pa.RecordBatch) -> None:
    expected = (pa.Table.from_batches([batch]).join(pa.Table.from_batches([names]), keys="cust", right_keys="id",
                                                    join_type="left outer")
                .sort_by("id").select(["id", "name", "amount"]))
    got = pa.Table.from_batches(out).sort_by("id")
    if not got.equals(expected.cast(got.schema)):
        sys.exit("lookup join: the rule's result differs from pyarrow's join; the benchmark would be void")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    h.add_method_options(parser)
    parser.add_argument("--batches", default="1024,16384,65536")
    parser.add_argument("--keys", default="1000,100000")
    args = parser.parse_args()
    target_s, rounds, described = h.method(args)
    print("machine:", h.machine())
    print(described)
    rows_out = []
    for keys in map(int, args.keys.split(",")):
        names = pa.record_batch({"id": pa.array(range(keys), pa.int64()),
                                 "name": pa.array([f"customer {i}" for i in range(keys)])})
        table = TableState(STREAMS["customers"])
        table.update(names)
        plain, joined = pipeline(PLAIN, None), pipeline(JOINED, table)
        for n in map(int, args.batches.split(",")):
            batch = orders(n, keys)
            check(joined.on_batch(qualified(batch), 0), batch, names)
            fed = qualified(batch)
            ns = h.measure({"no join": h.py_runner(plain.on_batch, batch, 0),
                            "lookup join": h.py_runner(joined.on_batch, fed, 0)}, target_s, rounds, args.stat)
            per_s = {k: n / (v / 1e9) for k, v in ns.items()}
            rows_out.append([f"{keys:,} keys, {n:,} rows", f"{per_s['no join'] / 1e6:.1f}",
                             f"{per_s['lookup join'] / 1e6:.1f}", f"{per_s['lookup join'] / per_s['no join']:.2f}"])
    print(h.table(["table, batch", "no join M rows/s", "lookup join M rows/s", "join / no join"], rows_out))


if __name__ == "__main__":
    main()
