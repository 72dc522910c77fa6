"""Benchmark 2: a native aggregate over a window, against pyarrow's group_by aggregate.

The bundled aggregate ``accumulateWordCount(text, ' ')`` (per group: the number of
space-separated words in the group's texts) runs over windows of 100K and 1M rows, each split
into 1, 10 or 1000 groups, through the host's loader
(``functions['accumulateWordCount'].create(Context).aggregate([text, sep], n, group_ids, ngroups)``;
group_ids is None for one group, as plutino.h says), and is compared with:

  C                  the same aggregate called from C by bench/direct_driver.c on the same
                     arrays and group ids: the plugin's own work, without the host;
  host               the host, given the group ids;
  host+ids           the host, including turning the window's group key column into group ids
                     (``pc.dictionary_encode``), as an engine must;
  pyarrow group_by   the equivalent in pyarrow:
                     ``list_value_length(split_pattern(text, ' '))`` then
                     ``Table.group_by(key).aggregate([(words, 'sum')])``.

Every result is checked against pyarrow's before timing. It prints rows/s for each and the
ratios; the texts have single spaces and no empty strings, where the two definitions agree.

    python bench/aggregate.py [--quick] [--stat min|median] [--rows 100000,1000000] [--plugins DIR]
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

import _harness as h
from plutino.native.loader import load_plugin
from plutino_contract.protocols import Context

GROUPS = [1, 10, 1000]
SEP = pa.array([" "])


def make_window(rows: int, ngroups: int, seed: int = 7) -> tuple[pa.Array, pa.Array]:
    """Texts of 3 to 15 words (1% null) and an int64 group key with ``ngroups`` distinct values."""
    rnd = random.Random(seed)
    vocab = ["".join(rnd.choices("abcdefghijklmnopqrstuvwxyz", k=rnd.randint(2, 9))) for _ in range(500)]
    lines = [" ".join(rnd.choices(vocab, k=rnd.randint(3, 15))) for _ in range(2000)] + [None] * 20
    text = pc.take(pa.array(lines, pa.string()),
                   pc.cast(pc.floor(pc.multiply(pc.random(rows, initializer=seed), len(lines))), pa.int32()))
    slot = pc.cast(pc.floor(pc.multiply(pc.random(rows, initializer=seed + 1), ngroups)), pa.int64())
    slot = pa.concat_arrays([pa.array(range(min(ngroups, rows)), pa.int64()), slot.slice(min(ngroups, rows))])
    key = pc.add(pc.multiply(slot, 7919), 1_000_003)  # keys that are not already 0..n-1
    return text, key


def group_ids(key: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Group ids 0..n-1 in order of first appearance, and the n keys: what an engine computes
    for a window."""
    encoded = pc.dictionary_encode(key)
    return encoded.indices, encoded.dictionary


def pyarrow_word_count(text: pa.Array, key: pa.Array) -> pa.Table:
    words = pc.list_value_length(pc.split_pattern(text, " "))
    return pa.table({"key": key, "words": words}).group_by("key").aggregate([("words", "sum")])


def check(name: str, got: pa.Array, keys: pa.Array, expected: pa.Table) -> None:
    """The native counts, per key, must equal pyarrow's."""
    native = dict(zip(keys.to_pylist(), got.to_pylist()))
    theirs = dict(zip(expected["key"].to_pylist(), expected["words_sum"].to_pylist()))
    if native != theirs:
        sys.exit(f"{name}: the native counts differ from pyarrow's; the benchmark would be void")


def bench_window(inst: Any, direct: h.DirectFunction, n: int, g: int, target_s: float,
                 rounds: int) -> dict[str, list[float]]:
    """ns per window of every case in every round, for a window of n rows in g groups."""
    text, key = make_window(n, g)
    ids, keys = group_ids(key)
    ngroups = len(keys)
    native_ids = None if ngroups == 1 else ids  # one group: no ids, as plutino.h says
    check(f"{n:,} rows in {g} groups", inst.aggregate([text, SEP], n, native_ids, ngroups), keys,
          pyarrow_word_count(text, key))

    def host(t: pa.Array, i: pa.Array | None) -> Any:
        return inst.aggregate([t, SEP], n, i, ngroups)

    def host_with_ids(t: pa.Array, k: pa.Array) -> Any:
        i, d = group_ids(k)
        return inst.aggregate([t, SEP], n, None if len(d) == 1 else i, len(d))

    return h.measure_rounds({
        "C": direct.bind([text, SEP], n, native_ids, ngroups),
        "host": h.py_runner(host, text, native_ids),
        "host+ids": h.py_runner(host_with_ids, text, key),
        "pyarrow group_by": h.py_runner(pyarrow_word_count, text, key),
    }, target_s, rounds, f"{n:,} rows in {g:,} groups")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    h.add_method_options(parser)
    parser.add_argument("--rows", help="comma-separated window sizes in rows (default 100000,1000000; "
                                       "with --quick 100000)")
    parser.add_argument("--plugins", help="a built plugins/ folder (default: build native_plugins/ "
                                          "into build/bench-native)")
    args = parser.parse_args(argv)
    rows_arg = args.rows or ("100000" if args.quick else "100000,1000000")
    try:
        sizes = [int(x) for x in rows_arg.split(",")]
    except ValueError:
        parser.error(f"--rows takes comma-separated integers, e.g. 100000,1000000; got {rows_arg!r}")
    if min(sizes) < max(GROUPS):
        parser.error(f"--rows: every window needs at least {max(GROUPS)} rows (one per group), got {min(sizes)}")
    target_s, rounds, method = h.method(args)
    so = h.plugin_dir(args.plugins, ["accumulateWordCount"]) / "functions" / "accumulateWordCount.so"
    print("machine:", h.machine())
    print(f"{method}; plugin {so}")
    h.settle_malloc()
    fn = load_plugin(so, kind="function").functions["accumulateWordCount"]
    fn.validate([pa.string(), pa.field("const", pa.string(), nullable=False)])
    inst = fn.create(Context(plugin_name="accumulateWordCount"))
    direct = h.DirectFunction(so, "accumulateWordCount")
    rows: list[list[str]] = []
    speeds: list[str] = []
    rec = h.Record("aggregate", method, h.machine())
    try:
        for n in sizes:
            for g in GROUPS:
                rounds_ns = bench_window(inst, direct, n, g, target_s, rounds)
                r = {k: h.Spread.of(v).pick(args.stat) for k, v in rounds_ns.items()}
                speed = h.Spread.of([c / host for c, host in zip(rounds_ns["C"], rounds_ns["host"])])
                busy = h.METER.marker(f"{n:,} rows in {g:,} groups")
                speeds.append(f"{n:>9,} rows, {g:>5,} groups{busy or ' '} host speed vs C, min/median/max: "
                              f"{speed.text()}")
                if n == max(sizes) and g == max(GROUPS):
                    rec.headline("speed", f"native aggregate, {n:,}-row window in {g:,} groups: speed vs C", speed,
                                 "x", "the same C aggregate called from C", True, busy == "!")
                pa_ns = r["pyarrow group_by"]
                rows.append([f"{n:,}{busy}", f"{g:,}", *(f"{n / v * 1e3:,.1f}" for v in r.values()),
                             f"{r['C'] / r['host']:.2f}", f"{pa_ns / r['host']:.1f}x",
                             f"{pa_ns / r['host+ids']:.1f}x"])
    finally:
        inst.close()
        direct.close()
    print()
    print("accumulateWordCount(text, ' ') per window: M rows/s (higher is faster)")
    print(h.table(["window rows", "groups", "C", "host", "host+ids", "pyarrow group_by", "host speed vs C",
                   "host vs pyarrow", "host+ids vs pyarrow"], rows))
    print()
    print("\n".join(speeds))
    print(h.METER.summary())
    if not args.no_save:
        print(f"results saved to {rec.save(h.METER).relative_to(h.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
