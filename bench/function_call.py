"""Benchmark 1: a native scalar function called through the host, against the machine's limit.

Two functions of the bundled library ``fastmath`` -- ``mul2add1(x)`` (float64 x*2+1) and
``upperAscii(s)`` (strings) -- are called through the host's loader
(``load_plugin -> functions[name] -> create(Context) -> .call([arr], n)``) on Arrow batches of
1, 1K, 64K and 1M rows, and compared, on the same arrays, with:

  (a) C            the same plugin function called from C by bench/direct_driver.c: the
                   plugin's own work, including the release of each result, without the host
                   (its results allocated by the allocator the host hands its plugins, so that
                   "host" vs (a) is the cost of calling through the host and nothing else);
  (b) pyarrow      the same logic in pyarrow.compute (``pc.add(pc.multiply(x, 2), 1)``;
                   ``pc.utf8_upper``, and ``pc.ascii_upper``, which is upperAscii's logic);
  (c) Python UDF   a per-row Python function (``to_pylist``, a loop, ``pa.array``), <= 64K rows;
  host, call notes the host's call as a worker process makes it: an instance created while a
                   :class:`plutino.dataplane.callboard.BoardWriter` is installed as the process's
                   call notes (``plutino.native.watch.install``), so each call writes its note
                   (site, since when, deadline) to a shared-memory call board before it and
                   "returned" after it, as every plugin call in a worker does. Its ratio to
                   "host" is the per-call cost of running plugins in a worker (the goal: not
                   measurable at 16K rows, i.e. under 1%).

It prints ns/row for each with its time relative to (a), and checks the goals of issue 8: the
host runs at >= 0.8 of (a)'s speed at 64K rows and above, and adds <= 5 us per batch (host
time minus (a)'s time at 1 row); and the cost of the call notes at 1, 16K and 64K rows.

Then an allocator check measures the host's allocator itself: each large batch size alone in a
fresh process (as in a host whose batches keep one size; see _harness.settle_malloc), (a) with
the host's allocator and through the host, against (a) with a plain 64-byte aligned
posix_memalign -- what plutino.h promises, done the ordinary way.

    python bench/function_call.py [--quick] [--stat min|median] [--plugins DIR] [--functions mul2add1,upperAscii]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc

import _harness as h
from plutino.dataplane.callboard import BoardWriter, create_board
from plutino.native import watch
from plutino.native.loader import load_plugin
from plutino_contract.protocols import Context

SIZES = [1, 1024, 16384, 65536, 1 << 20]
CHECK_SIZES = [65536, 1 << 20]
PY_MAX_ROWS = 65536
GOAL_SPEED = 0.8        # host speed / C's speed, at >= 64K rows
GOAL_OVERHEAD_US = 5.0  # host time - C's time, at 1 row
NOTED = "host, call notes"
NOTES_SIZES = [1, 16384, 65536]  # where the cost of the call notes is reported
GOAL_NOTES = 0.01       # the call notes' share of a call at >= 16K rows: not measurable


# Data is made by pyarrow (in its own memory pool), so that making it does not change how
# glibc's malloc serves the results (see _harness.settle_malloc).

def make_floats(n: int) -> pa.Array:
    """Uniform in [-1e6, 1e6), no nulls."""
    return pc.multiply(pc.subtract(pc.random(n, initializer=1), 0.5), 2e6)


def make_strings(n: int) -> pa.Array:
    """Mixed-case ASCII words of 4 to 20 letters (12 on average) drawn from a pool of 1000."""
    letters = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    picks = pc.random(1000 * 21, initializer=2).to_pylist()
    words = []
    for w in range(1000):
        r = picks[w * 21: w * 21 + 21]
        words.append(bytes(letters[int(x * 52)] for x in r[1: 5 + int(r[0] * 17)]).decode())
    index = pc.cast(pc.floor(pc.multiply(pc.random(n, initializer=3), 1000)), pa.int32())
    return pc.take(pa.array(words), index)


def own_buffers(a: pa.Array, n: int) -> pa.Array:
    """The first n rows as an array of its own (offset 0), as a source would produce it."""
    return pa.concat_arrays([a.slice(0, n)])


TWO, ONE = pa.scalar(2.0), pa.scalar(1.0)


def pc_mul2add1(x: pa.Array, _: Any) -> pa.Array:
    return pc.add(pc.multiply(x, TWO), ONE)


def pc_utf8_upper(s: pa.Array, _: Any) -> pa.Array:
    return pc.utf8_upper(s)


def pc_ascii_upper(s: pa.Array, _: Any) -> pa.Array:
    return pc.ascii_upper(s)


def py_mul2add1(x: pa.Array, _: Any) -> pa.Array:
    return pa.array([None if v is None else v * 2 + 1 for v in x.to_pylist()], pa.float64())


def py_upper(s: pa.Array, _: Any) -> pa.Array:
    return pa.array([None if v is None else v.upper() for v in s.to_pylist()], pa.string())


Case = Callable[[pa.Array, Any], pa.Array]
FUNCTIONS: dict[str, tuple[pa.DataType, Callable[[int], pa.Array], dict[str, Case], Case]] = {
    # name: (argument type, data maker, pyarrow.compute versions, Python UDF)
    "mul2add1": (pa.float64(), make_floats, {"pyarrow": pc_mul2add1}, py_mul2add1),
    "upperAscii": (pa.string(), make_strings, {"pyarrow utf8_upper": pc_utf8_upper,
                                              "pyarrow ascii_upper": pc_ascii_upper}, py_upper),
}


class Subject:
    """One function ready to run: through the host, and from C with either allocator."""

    def __init__(self, so: Path, name: str, max_rows: int, notes: bool = False) -> None:
        self.name = name
        arg_type, maker, self.pcs, self.py = FUNCTIONS[name]
        fn = load_plugin(so, kind="function").functions[name]
        fn.validate([arg_type])  # once, as the engine does when a rule is created
        self.inst = fn.create(Context(plugin_name="fastmath"))
        self.inst_noted: Any = None
        self.board: str | None = None
        if notes:  # an instance made as a worker makes it: with the call board as the notes
            fd, self.board = tempfile.mkstemp(prefix="plutino-bench-", suffix=".board",
                                              dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
            os.close(fd)
            create_board(self.board)
            previous = watch.current()
            watch.install(BoardWriter(self.board, 10.0))
            try:
                self.inst_noted = fn.create(Context(plugin_name="fastmath", rule_id="bench"))
            finally:
                watch.install(previous)
        self.c = h.DirectFunction(so, name, host_alloc=True)
        self.c_aligned = h.DirectFunction(so, name)
        self.data = maker(max_rows)

    def batch(self, n: int) -> pa.Array:
        arr = own_buffers(self.data, n)
        expected = next(iter(self.pcs.values()))(arr, None)
        if not self.inst.call([arr], n).equals(expected):
            sys.exit(f"{self.name}: the host's result differs from pyarrow's at {n} rows; the benchmark would be void")
        if self.inst_noted is not None and not self.inst_noted.call([arr], n).equals(expected):
            sys.exit(f"{self.name}: the host's result with call notes differs from pyarrow's at {n} rows")
        return arr

    def close(self) -> None:
        self.inst.close()
        if self.inst_noted is not None:
            self.inst_noted.close()
        if self.board is not None:
            os.unlink(self.board)
        self.c.close()
        self.c_aligned.close()


def bench_function(so: Path, name: str, sizes: list[int], target_s: float, rounds: int,
                   stat: str) -> tuple[dict[int, dict[str, float]], dict[int, dict[str, list[float]]]]:
    """ns per call of every case at every size: {rows: {case: ns}}, and every round's {rows: {case: [ns]}}."""
    subject = Subject(so, name, max(sizes), notes=True)
    results: dict[int, dict[str, float]] = {}
    samples: dict[int, dict[str, list[float]]] = {}
    try:
        for n in sizes:
            arr = subject.batch(n)
            cases: dict[str, h.Runner] = {
                "C": subject.c.bind([arr], n),
                "host": h.py_runner(subject.inst.call, [arr], n),
                NOTED: h.py_runner(subject.inst_noted.call, [arr], n),
            }
            for label, f in subject.pcs.items():
                cases[label] = h.py_runner(f, arr, None)
            if n <= PY_MAX_ROWS:
                cases["Python UDF"] = h.py_runner(subject.py, arr, None)
            samples[n] = h.measure_rounds(cases, target_s, rounds, label=f"{name} {n:,} rows")
            results[n] = {k: h.Spread.of(v).pick(stat) for k, v in samples[n].items()}
            print(f"  {name} {n:>9,} rows: " + ", ".join(f"{k} {v / n:,.2f}" for k, v in results[n].items())
                  + " ns/row", file=sys.stderr)
    finally:
        subject.close()
    return results, samples


def speed_spread(rounds: dict[str, list[float]]) -> h.Spread:
    """The host's speed relative to C's, round by round (the two ran side by side in each round)."""
    return h.Spread.of([c / host for c, host in zip(rounds["C"], rounds["host"])])


def overhead_spread(rounds: dict[str, list[float]]) -> h.Spread:
    """The host's time minus C's (us), round by round."""
    return h.Spread.of([(host - c) / 1000 for c, host in zip(rounds["C"], rounds["host"])])


def record(rec: h.Record, name: str, samples: dict[int, dict[str, list[float]]]) -> list[str]:
    """The headlines of one function into ``rec``; the lines of min/median/max to print."""
    lines = []
    for n, r in samples.items():
        busy = h.METER.marker(f"{name} {n:,} rows") == "!"
        speed = speed_spread(r)
        per_row = {k: h.Spread.of(r[k]).scaled(1 / n).text("{:,.2f}") for k in ("host", "C")}
        lines.append(f"{name} {n:>9,} rows{'!' if busy else ' '} host speed vs C, min/median/max of "
                     f"{len(r['C'])} rounds: {speed.text()}; host {per_row['host']} ns/row, C {per_row['C']} ns/row")
        if n == 65536:
            rec.headline(f"{name}.speed.64K", f"native function `{name}`, 64K-row batches: speed vs C", speed, "x",
                         "the same C loop called from C", True, busy)
        if n == 1:
            rec.headline(f"{name}.overhead", f"native function `{name}`: host's cost per call (host - C at 1 row)",
                         overhead_spread(r), "us", "the same C function called from C", False, busy)
    return lines


def report(name: str, results: dict[int, dict[str, float]]) -> tuple[str, list[str]]:
    """The table for one function, and its lines about the goals."""
    cases = list(next(iter(results.values())).keys())
    header = ["rows", *cases, "host speed vs (a)"]
    rows = []
    for n, r in results.items():
        base = r["C"]
        cells = [f"{n:,}{h.METER.marker(f'{name} {n:,} rows')}"]
        for c in cases:
            if c not in r:
                cells.append("-")
            elif c == "C":
                cells.append(h.fmt_ns(r[c] / n))
            else:
                cells.append(f"{h.fmt_ns(r[c] / n)} ({r[c] / base:.2f}x)")
        cells.append(f"{base / r['host']:.2f}")
        rows.append(cells)
    verdicts = []
    if 1 in results:
        r = results[1]
        over_us = (r["host"] - r["C"]) / 1000
        ok = "meets" if over_us <= GOAL_OVERHEAD_US else "MISSES"
        verdicts.append(f"{name}: fixed overhead per batch (host - C at 1 row) = {over_us:.2f} us "
                        f"(C {r['C'] / 1000:.3f} us, host {r['host'] / 1000:.2f} us); "
                        f"{ok} the goal <= {GOAL_OVERHEAD_US:g} us")
    for n, r in results.items():
        if n >= 65536:
            speed = r["C"] / r["host"]
            ok = "meets" if speed >= GOAL_SPEED else "MISSES"
            verdicts.append(f"{name}: at {n:,} rows the host runs at {speed:.3f} of C's speed; "
                            f"{ok} the goal >= {GOAL_SPEED}")
    for n in NOTES_SIZES:
        point = results.get(n)
        if point is None or NOTED not in point:
            continue
        share = point[NOTED] / point["host"] - 1
        verdict = ""
        if n >= 16384:
            verdict = "; " + ("meets" if share <= GOAL_NOTES else "MISSES") + f" the goal < {GOAL_NOTES:.0%}"
        verdicts.append(f"{name}: at {n:,} rows the call notes cost {(point[NOTED] - point['host']):+,.0f} ns a call "
                        f"({share:+.1%} of the call through the host){verdict}")
    title = f"{name}: ns/row (in brackets: time relative to (a) C; lower is faster)"
    return title + "\n" + h.table(header, rows), verdicts


def allocator_check_child(so: Path, name: str, n: int, target_s: float, rounds: int, stat: str) -> None:
    """In a fresh process, for one function and one batch size: the host and C with the host's
    allocator first (interleaved), then C with posix_memalign, whose frees raise glibc's mmap
    threshold. Prints {case: ns} as JSON. One size per process, since a larger result freed
    earlier would raise the threshold above the smaller ones (see _harness.settle_malloc)."""
    s = Subject(so, name, n)
    arr = s.batch(n)
    result = h.measure({"host": h.py_runner(s.inst.call, [arr], n), "C": s.c.bind([arr], n)},
                       target_s, rounds, stat)
    result.update(h.measure({"C aligned": s.c_aligned.bind([arr], n)}, target_s, rounds, stat))
    s.close()
    print(json.dumps(result))


def allocator_check(so: Path, names: list[str], args: argparse.Namespace) -> str:
    """The table of the allocator check: one fresh process per function and batch size."""
    rows = []
    for name in names:
        for n in CHECK_SIZES:
            cmd = [sys.executable, __file__, "--allocator-check-child", str(n), "--plugins", str(so.parent.parent),
                   "--functions", name, "--stat", args.stat] + (["--quick"] if args.quick else [])
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if proc.returncode != 0:
                return f"allocator check failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr.strip()}"
            r = json.loads(proc.stdout)
            base = r["C aligned"]
            rows.append([f"{name} {n:,}", h.fmt_ns(base / n), f"{h.fmt_ns(r['C'] / n)} ({r['C'] / base:.2f}x)",
                         f"{h.fmt_ns(r['host'] / n)} ({r['host'] / base:.2f}x)", f"{base / r['host']:.2f}"])
    return ("allocator check: each function and size alone in a fresh process, as in a host whose batches\n"
            "keep one size (ns/row; in brackets: time relative to C with posix_memalign(64))\n"
            + h.table(["function, rows", "C, posix_memalign", "C, host's allocator", "host",
                       "host speed vs C, posix_memalign"], rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    h.add_method_options(parser)
    parser.add_argument("--plugins", help="a built plugins/ folder (default: build native_plugins/ "
                                          "into build/bench-native)")
    parser.add_argument("--functions", default=",".join(FUNCTIONS),
                        help="comma-separated subset of " + ", ".join(FUNCTIONS))
    parser.add_argument("--no-allocator-check", action="store_true", help="skip the fresh-process check")
    parser.add_argument("--allocator-check-child", type=int, metavar="ROWS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = args.functions.split(",")
    for name in names:
        if name not in FUNCTIONS:
            parser.error(f"--functions: unknown function {name!r}; choose from {', '.join(FUNCTIONS)}")
    target_s, rounds, method = h.method(args)
    so = h.plugin_dir(args.plugins, ["fastmath"]) / "functions" / "fastmath.so"
    if args.allocator_check_child:
        allocator_check_child(so, names[0], args.allocator_check_child, target_s, rounds, args.stat)
        return 0
    print("machine:", h.machine())
    print(f"{method}; plugin {so}")
    h.settle_malloc()
    verdicts, spreads = [], []
    rec = h.Record("function_call", method, h.machine())
    for name in names:
        results, samples = bench_function(so, name, SIZES, target_s, rounds, args.stat)
        text, v = report(name, results)
        print()
        print(text)
        verdicts += v
        spreads += record(rec, name, samples)
        rec.figures[name] = {str(n): {k: h.Spread.of(s)._asdict() for k, s in r.items()} for n, r in samples.items()}
    print()
    print("\n".join(spreads))
    print(h.METER.summary())
    print()
    print("\n".join(verdicts))
    if not args.no_save:
        print(f"results saved to {rec.save(h.METER).relative_to(h.ROOT)}")
    if not args.no_allocator_check:
        print()
        print(allocator_check(so, names, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
