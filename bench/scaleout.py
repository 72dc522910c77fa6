"""Scale-out: a plugin UDF in Ray Data (and Spark, and MQTT shared subscriptions) against one core.

Section ``ray`` (this file): the geo plugin's ``haversine`` and ``geohash`` over N rows
(``plutino.udf``, the same engine code as a rule) run

* in this process on one core: ``plutino.Engine.query`` and the UDF called directly;
* in a local Ray cluster (``ray.init(num_cpus=2)``) with ``map_batches(f, batch_format="pyarrow")``
  as tasks, at most 1 and at most 2 at once (``concurrency``, one CPU each), the input already
  in the object store and Ray's worker processes warm (a first run loads the plugin in each:
  once per process, then every task reuses it); and the same with an identity function,
  which is Ray's own cost; and the same blocks through Ray core tasks (``ray.remote``, at most 1
  and 2 at once), which leaves Ray Data's scheduler out: on a 2-CPU cluster Ray Data runs its map
  tasks one at a time (its ``ResourceBudget`` backpressure), core tasks run two.

It reports rows/s of each, the speed-up of 2 tasks over 1 (the goal is >= 1.8x; on a 2-core
machine shared with other jobs expect less: Ray's own processes take CPU too), and the
per-row overhead of Ray's Arrow hand-off: (1 task's time - the in-process UDF's time) / N.
Each case runs ``--rounds`` times, interleaved; min/median/max are printed and saved with the
load seen (build/bench/scaleout/, as the other scripts do).

Other sections are other files, imported when present and chosen with ``--sections``:
``spark`` (``bench/scaleout_spark.py``'s ``spark_section``) and ``mqtt``
(``bench/scaleout_mqtt.py``'s ``measure``); ``--rows``/``--rounds``/``--quick`` reach them
(the MQTT section counts messages: its own defaults). All sections' headlines go in one record.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import _harness as h
import plutino

SECTIONS = {"ray": None, "spark": "scaleout_spark", "mqtt": "scaleout_mqtt"}
SELECT = "haversine(lat, lon, lat2, lon2) AS d, geohash(lat, lon, 7) AS h"


def geo_data(n: int, blocks: int) -> list[pa.Table]:
    ids = np.arange(n, dtype=np.int64)
    table = pa.table({
        "lat": pc.divide(pc.subtract(pc.cast(pa.array(ids % 1799), pa.float64()), 899.0), 10.0),
        "lon": pc.divide(pc.subtract(pc.cast(pa.array(ids % 3593), pa.float64()), 1796.0), 10.0),
        "lat2": pa.array((ids % 997 - 498) / 6.0),
        "lon2": pa.array((ids % 1201 - 600) / 4.0),
    })
    size = -(-n // blocks)
    return [table.slice(i, size) for i in range(0, n, size)]


def identity(batch: pa.Table) -> pa.Table:
    return batch


def ray_section(args: Any, rec: h.Record) -> None:
    import ray

    n, rounds = args.rows, args.rounds
    geo = Path(args.plugins) / "functions" / "geo.so"
    f = plutino.udf(geo, select=SELECT)
    parts = geo_data(n, blocks=16)
    whole = pa.concat_tables(parts)
    engine = plutino.Engine([geo])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=2 << 30)
    try:
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        ds = ray.data.from_arrow(parts).materialize()

        def pool(fn: Any, k: int) -> float:
            t = time.perf_counter()
            ds.map_batches(fn, batch_format="pyarrow", batch_size=None, concurrency=k, num_cpus=1,
                           zero_copy_batch=True).materialize()
            return time.perf_counter() - t

        refs = [ray.put(p) for p in parts]
        apply = ray.remote(num_cpus=1)(lambda fn, t: fn(t))

        def tasks(fn: Any, k: int) -> float:
            """The same blocks through Ray core tasks (``ray.remote``), at most ``k`` at once:
            Ray's workers without Ray Data's scheduler."""
            t = time.perf_counter()
            fn_ref, pending, done = ray.put(fn), [], []
            for ref in refs:
                if len(pending) >= k:
                    finished, pending = ray.wait(pending, num_returns=1)
                    done += finished
                pending.append(apply.remote(fn_ref, ref))
            ray.get(done + pending)
            return time.perf_counter() - t

        pool(f, 2)  # warm: the workers start and load the plugin (once each)
        tasks(f, 2)
        def local(call: Any) -> float:
            t = time.perf_counter()
            call()
            return time.perf_counter() - t

        cases = {
            "Engine.query, 1 core": lambda: local(lambda: engine.query(f"SELECT {SELECT} FROM s", whole)),
            "udf in process, 1 core": lambda: local(lambda: [f(p) for p in parts]),
            "Ray identity, 1 task": lambda: pool(identity, 1),
            "Ray udf, 1 task": lambda: pool(f, 1),
            "Ray udf, 2 tasks": lambda: pool(f, 2),
            "Ray core tasks, 1 at once": lambda: tasks(f, 1),
            "Ray core tasks, 2 at once": lambda: tasks(f, 2),
        }
        samples: dict[str, list[float]] = {k: [] for k in cases}
        h.METER.start("ray")
        for _ in range(rounds):
            for name, case in cases.items():
                samples[name].append(case())
        h.METER.stop("ray")
        busy = h.METER.marker("ray")
    finally:
        ray.shutdown()
        engine.close()
    rows = []
    spreads = {k: h.Spread.of([n / s / 1e6 for s in v]) for k, v in samples.items()}
    for name, spread in spreads.items():
        rows.append([name + busy, spread.text()])
    print(f"\n{n:,} rows, {SELECT}: M rows/s, min/median/max of {rounds} rounds")
    print(h.table(["case", "M rows/s"], rows))
    speedup = h.Spread.of([a / b for a, b in zip(samples["Ray udf, 1 task"], samples["Ray udf, 2 tasks"])])
    local_best = min(samples["udf in process, 1 core"])
    overhead = h.Spread.of([(s - local_best) / n * 1e9 for s in samples["Ray udf, 1 task"]])
    vs_engine = h.Spread.of([e / s for e, s in zip(samples["Engine.query, 1 core"], samples["Ray udf, 2 tasks"])])
    core = h.Spread.of([a / b for a, b in zip(samples["Ray core tasks, 1 at once"],
                                              samples["Ray core tasks, 2 at once"])])
    print(f"2 tasks vs 1 task: {speedup.text()}x (goal >= 1.8x)")
    print(f"Ray core tasks, 2 at once vs 1: {core.text()}x (Ray Data's scheduler left out)")
    print(f"Ray with 2 tasks vs Engine on one core: {vs_engine.text()}x")
    print(f"Ray's per-row overhead (1 task - in-process udf): {overhead.text('{:.1f}')} ns/row")
    rec.headline("ray_speedup", f"Ray Data, geo udf over {n:,} rows: 2 tasks vs 1", speedup, "x",
                 "1 task", True, busy == "!")
    rec.headline("ray_core_speedup", f"Ray core tasks, geo udf over {n:,} rows: 2 at once vs 1", core, "x",
                 "1 at once", True, busy == "!")
    rec.headline("ray_overhead", "Ray Data's Arrow hand-off per row (1 task - udf in process)", overhead,
                 "ns/row", "the udf in process", False, busy == "!")
    rec.figures["ray"] = {"rows": n, "rounds": rounds,
                          "rows_per_s": {k: [n / s for s in v] for k, v in samples.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 M rows, 2 rounds (noisier)")
    parser.add_argument("--rows", type=int, help="rows per run (default 10,000,000; --quick 2,000,000)")
    parser.add_argument("--rounds", type=int, help="rounds per case (default 3; --quick 2)")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run, of {', '.join(SECTIONS)} (default: all present)")
    parser.add_argument("--plugins", help="a built plugins/ folder (default: build native_plugins/ "
                                          "into build/bench-native)")
    h.add_load_options(parser)
    modules: dict[str, Any] = {}
    for name, module in SECTIONS.items():
        if module is not None and (Path(__file__).parent / f"{module}.py").is_file():
            modules[name] = importlib.import_module(module)
    args = parser.parse_args(argv)
    args.rows_given = args.rows is not None
    args.rows = args.rows or (2_000_000 if args.quick else 10_000_000)
    args.rounds = args.rounds or (2 if args.quick else 3)
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"--sections: unknown {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    h.METER.threshold, h.METER.strict = args.load_threshold, args.strict
    args.plugins = str(h.plugin_dir(args.plugins, ["geo", "fastmath", "random", "file"]))
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    print("machine:", h.machine())
    rec = h.Record("scaleout", f"{args.rounds} interleaved rounds of {args.rows:,} rows", h.machine())
    for name in chosen:
        if name == "ray":
            ray_section(args, rec)
        elif name not in modules:
            if args.sections != ",".join(SECTIONS):
                parser.error(f"--sections {name}: bench/{SECTIONS[name]}.py is not there")
        elif name == "spark":
            print("\n== spark")
            sizes = {"rows": args.rows, "rounds": args.rounds} if args.rows_given else {"rounds": args.rounds}
            modules["spark"].spark_section(Path(args.plugins), record=rec, **sizes)
        elif name == "mqtt":
            print("\n== mqtt")
            result = modules["mqtt"].measure(rounds=args.rounds, meter=h.METER,
                                             **({"messages": 50_000} if args.quick else {}))
            print("\n".join(result.lines()))
            result.headlines(rec)
            rec.figures["mqtt"] = result.figures()
    print(h.METER.summary())
    if not args.no_save:
        print(f"results saved to {rec.save(h.METER).relative_to(h.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
