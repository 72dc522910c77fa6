"""Benchmark 1: a native scalar function called through the host, against the machine's limit.

Two functions of the bundled library ``fastmath`` -- ``mul2add1(x)`` (float64 x*2+1) and
``upperAscii(s)`` (strings) -- are called through the host's loader
(``load_plugin -> functions[name] -> create(Context) -> .call([arr], n)``) on Arrow batches of
1, 1K, 64K and 1M rows, and compared, on the same arrays, with:

  (a) C          the same plugin function called from C by bench/direct_driver.c: the
                 plugin's own work, including the release of each result, without the host,
                 its results allocated with malloc as a plain C program's would be;
  (a') C+host alloc   the same, with the allocator the host hands its plugins, so that the
                 host's two costs show apart: its allocator ((a') - (a)) and the call
                 through Python ("host" - (a'));
  (b) pyarrow    the same logic in pyarrow.compute (``pc.add(pc.multiply(x, 2), 1)``,
                 ``pc.utf8_upper``; ``pc.ascii_upper`` is shown as well, being the same logic);
  (c) Python     a per-row Python UDF (``to_pylist``, a loop, ``pa.array``); up to 64K rows.

It prints ns/row for each with its time relative to (a), and checks the goals of issue 8:
the host runs at >= 0.8 of (a)'s speed at 64K rows and above, and adds <= 5 us per batch
(host time minus (a)'s time at 1 row).

    python bench/function_call.py [--quick] [--plugins DIR]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

import _harness as h
import pyarrow as pa
import pyarrow.compute as pc
from plutino_contract.protocols import Context

from plutino.loader import load_plugin

SIZES = [1, 1024, 65536, 1 << 20]
PY_MAX_ROWS = 65536
GOAL_SPEED = 0.8       # host speed / direct speed, at >= 64K rows
GOAL_OVERHEAD_US = 5.0  # host time - direct time, at 1 row


def make_floats(n: int, seed: int = 1) -> pa.Array:
    rnd = random.Random(seed)
    return pa.array([rnd.uniform(-1e6, 1e6) for _ in range(n)], pa.float64())


def make_strings(n: int, seed: int = 2) -> pa.Array:
    """Mixed-case ASCII words of 4 to 20 letters (12 on average), drawn from a pool of 1000."""
    rnd = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    pool = pa.array(["".join(rnd.choices(letters, k=rnd.randint(4, 20))) for _ in range(1000)])
    return pc.take(pool, pa.array([rnd.randrange(1000) for _ in range(n)], pa.int32()))


def own_buffers(a: pa.Array, n: int) -> pa.Array:
    """The first n rows as an array of its own (offset 0), as a source would produce it."""
    return pa.concat_arrays([a.slice(0, n)])


def py_mul2add1(x: pa.Array, _: Any) -> pa.Array:
    return pa.array([None if v is None else v * 2 + 1 for v in x.to_pylist()], pa.float64())


def py_upper(s: pa.Array, _: Any) -> pa.Array:
    return pa.array([None if v is None else v.upper() for v in s.to_pylist()], pa.string())


TWO, ONE = pa.scalar(2.0), pa.scalar(1.0)


def pc_mul2add1(x: pa.Array, _: Any) -> pa.Array:
    return pc.add(pc.multiply(x, TWO), ONE)


def pc_utf8_upper(s: pa.Array, _: Any) -> pa.Array:
    return pc.utf8_upper(s)


def pc_ascii_upper(s: pa.Array, _: Any) -> pa.Array:
    return pc.ascii_upper(s)


FUNCTIONS = {
    # name: (argument type, data maker, pyarrow.compute versions, Python UDF)
    "mul2add1": (pa.float64(), make_floats, {"pyarrow": pc_mul2add1}, py_mul2add1),
    "upperAscii": (pa.string(), make_strings, {"pyarrow utf8_upper": pc_utf8_upper,
                                              "pyarrow ascii_upper": pc_ascii_upper}, py_upper),
}


def bench_function(so: Path, name: str, sizes: list[int], target_s: float, rounds: int) -> dict[int, dict[str, float]]:
    """ns per call of every case at every size: {rows: {case: ns}}."""
    arg_type, maker, pcs, py = FUNCTIONS[name]
    fn = load_plugin(so, kind="function").functions[name]
    fn.validate([arg_type])  # once, as the engine does when a rule is created
    inst = fn.create(Context(plugin_name="fastmath"))
    direct = h.DirectFunction(so, name)
    direct_host_alloc = h.DirectFunction(so, name, host_alloc=True)
    data = maker(max(sizes))
    results: dict[int, dict[str, float]] = {}
    try:
        for n in sizes:
            arr = own_buffers(data, n)
            expected = next(iter(pcs.values()))(arr, None)
            got = inst.call([arr], n)
            if not got.equals(expected):
                sys.exit(f"{name}: the host's result differs from pyarrow's at {n} rows; the benchmark would be void")
            del got
            cases: dict[str, h.Runner] = {
                "C": direct.bind([arr], n),
                "C+host alloc": direct_host_alloc.bind([arr], n),
                "host": h.py_runner(inst.call, [arr], n),
            }
            for label, f in pcs.items():
                cases[label] = h.py_runner(f, arr, None)
            if n <= PY_MAX_ROWS:
                cases["Python UDF"] = h.py_runner(py, arr, None)
            results[n] = h.measure(cases, target_s, rounds)
            print(f"  {name} {n:>8,} rows: " + ", ".join(f"{k} {v / n:,.2f}" for k, v in results[n].items())
                  + " ns/row", file=sys.stderr)
    finally:
        inst.close()
        direct.close()
        direct_host_alloc.close()
    return results


def report(name: str, results: dict[int, dict[str, float]]) -> tuple[str, list[str]]:
    """The table for one function, and its lines about the goals."""
    cases = list(next(iter(results.values())).keys())
    header = ["rows", *cases, "host speed vs (a)", "vs (a')"]
    rows = []
    for n, r in results.items():
        base = r["C"]
        cells = [f"{n:,}"]
        for c in cases:
            if c not in r:
                cells.append("-")
            elif c == "C":
                cells.append(h.fmt_ns(r[c] / n))
            else:
                cells.append(f"{h.fmt_ns(r[c] / n)} ({r[c] / base:.2f}x)")
        cells += [f"{base / r['host']:.2f}", f"{r['C+host alloc'] / r['host']:.2f}"]
        rows.append(cells)
    verdicts = []
    if 1 in results:
        r = results[1]
        over_us = (r["host"] - r["C"]) / 1000
        ok = "meets" if over_us <= GOAL_OVERHEAD_US else "MISSES"
        verdicts.append(f"{name}: fixed overhead per batch (host - C at 1 row) = {over_us:.2f} us "
                        f"(C {r['C'] / 1000:.2f} us, C+host alloc {r['C+host alloc'] / 1000:.2f} us, "
                        f"host {r['host'] / 1000:.2f} us); {ok} the goal <= {GOAL_OVERHEAD_US:g} us")
    for n, r in results.items():
        if n >= 65536:
            speed = r["C"] / r["host"]
            ok = "meets" if speed >= GOAL_SPEED else "MISSES"
            verdicts.append(f"{name}: at {n:,} rows the host runs at {speed:.2f} of C's speed "
                            f"({r['C+host alloc'] / r['host']:.2f} of C with the host's allocator); "
                            f"{ok} the goal >= {GOAL_SPEED}")
    title = f"{name}: ns/row (in brackets: time relative to (a) C; lower is faster)"
    return title + "\n" + h.table(header, rows), verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short rounds (about 15 s in all; noisier)")
    parser.add_argument("--plugins", help="a built plugins/ folder (default: build native_plugins/ "
                                          "into build/bench-native)")
    parser.add_argument("--functions", default=",".join(FUNCTIONS), help="comma-separated subset of "
                        + ", ".join(FUNCTIONS))
    args = parser.parse_args(argv)
    target_s, rounds = (0.02, 3) if args.quick else (0.08, 5)
    so = h.plugin_dir(args.plugins, ["fastmath"]) / "functions" / "fastmath.so"
    print("machine:", h.machine())
    print(f"method: median of {rounds} interleaved rounds of >= {target_s * 1000:.0f} ms per case"
          f"{' (--quick)' if args.quick else ''}; plugin {so}")
    verdicts = []
    for name in args.functions.split(","):
        if name not in FUNCTIONS:
            parser.error(f"--functions: unknown function {name!r}; choose from {', '.join(FUNCTIONS)}")
        text, v = report(name, bench_function(so, name, SIZES, target_s, rounds))
        print()
        print(text)
        verdicts += v
    print()
    print("\n".join(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
