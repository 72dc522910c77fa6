"""Benchmark: a plutino.udf in Spark's mapInArrow against the same function in plutino.Engine.

The UDF (fastmath and geo, the select list of tests/scaleout/test_spark.py: ``mul2add1``,
``upperAscii``, ``haversine``, ``geohash`` and a timestamp passed through, ``WHERE x > 10``)
over the same rows, in the same run:

  engine          ``plutino.Engine.query`` in this process, one core, over the rows in
                  batches of Spark's size (``spark.sql.execution.arrow.maxRecordsPerBatch``);
  udf             the UDF called in this process over the same batches (``udf.map_batches``):
                  what each Spark Python worker runs;
  Spark scan      the cached DataFrame written to Spark's ``noop`` sink: Spark's own work;
  Spark identity  ``mapInArrow(lambda it: it)`` over it: plus Spark's Arrow hand-off (JVM rows
                  -> Arrow -> Python worker -> Arrow -> JVM rows);
  Spark udf       ``plutino.udf.spark.map_in_arrow`` over it, on ``local[1]`` and ``local[2]``.

Beside rows/s, each case's cores kept busy (this process tree's CPU over the wall time: the JVM
and its Python workers included) and CPU time per row: a Spark task is a pipeline of threads
and processes (the JVM's Arrow writer, the Python worker, the JVM's reader), so ``local[1]``
already uses more than one core, which bounds what a second core can add.

Each Spark run executes the whole query into Spark's ``noop`` sink (nothing collected); the
DataFrame is read from parquet and cached first. Reported: rows/s of each (min/median/max of
the rounds), the per-row overhead of Spark (Spark udf on local[1] minus udf; of which the
hand-off: identity minus scan), the speed-up of local[2] over local[1] (goal >= 1.8x; two
sessions one after the other, so a change of load between them moves it) and, measured in one
local[2] session with the rounds interleaved, of 2 tasks over the same rows coalesced into 1
task; the JVM's start (``SparkSession.builder.getOrCreate()`` in a fresh process) and the first
job's latency (Python workers forked, plutino imported, plugins loaded).

    python bench/scaleout_spark.py [--quick] [--rows N] [--rounds N] [--plugins DIR] [--no-save]

bench/scaleout.py imports :func:`spark_section` for its Spark part.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import _harness as h
from _figures import _tree_cpu_s

SELECT = ("id, mul2add1(x) AS x2, upperAscii(name) AS up, haversine(lat, lon, 48.8566, 2.3522) AS km,"
          " geohash(lat, lon, 7) AS h, ts")
WHERE = "x > 10"
SQL = f"SELECT {SELECT} FROM s WHERE {WHERE}"
BATCH_ROWS = 10_000  # Spark's default spark.sql.execution.arrow.maxRecordsPerBatch
FILES = 8            # parquet files: 8 partitions, 4 per core on local[2]
GOAL_SPEEDUP = 1.8
# pyspark 4.x says so at each mapInArrow when pandas 3 (which ray[data] brings) is installed
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
ONE_TASK = "Spark udf local[2], 1 task"

_JVM_START = """
import os, sys, time
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
from pyspark.sql import SparkSession
t = time.perf_counter()
s = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
     .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1").getOrCreate())
print(time.perf_counter() - t)
s.stop()
"""


def make_table(n: int) -> pa.Table:
    """``n`` rows like the tests' (nulls in x and name), made by pyarrow."""
    ids = pa.array(range(n), pa.int64())
    names = pa.array([f"sensor-{i}-ab" for i in range(13)] + [None])
    return pa.table({
        "id": ids,
        "name": pc.take(names, pc.cast(pc.floor(pc.multiply(pc.random(n, initializer=1), 14)), pa.int32())),
        "x": pc.multiply(pc.random(n, initializer=2), 40.0),
        "lat": pc.subtract(pc.multiply(pc.random(n, initializer=3), 160.0), 80.0),
        "lon": pc.subtract(pc.multiply(pc.random(n, initializer=4), 358.0), 179.0),
        "ts": pc.cast(pc.add(pc.multiply(ids, 37_000), 1_714_521_600_000_000), pa.timestamp("us", tz="UTC")),
    })


def code_path() -> str:
    import plutino
    import plutino_contract

    return os.pathsep.join(dict.fromkeys(str(Path(m.__file__).resolve().parents[1])
                                         for m in (plutino, plutino_contract)))


def spark_session(master: str) -> Any:
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    spark = (SparkSession.builder.master(master).appName("plutino-bench-spark")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", "2").config("spark.driver.memory", "1g")
             .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.executorEnv.PYTHONPATH", code_path())
             .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(BATCH_ROWS))
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def jvm_start_s(samples: int) -> list[float]:
    """Seconds for SparkSession.builder.getOrCreate() in a fresh Python process (pyspark
    imported first): the JVM launched and a local SparkContext up."""
    out = []
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    for _ in range(samples):
        proc = subprocess.run([sys.executable, "-c", _JVM_START], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            sys.exit(f"starting Spark's JVM failed (exit {proc.returncode}); is Java >= 17 installed "
                     f"(tools/system-deps.sh test)?\n{proc.stderr[-2000:]}")
        out.append(float(proc.stdout.strip().splitlines()[-1]))
    return out


def timed(f: Callable[[], Any]) -> tuple[float, float]:
    """Wall seconds of ``f()`` and the cores this process tree kept busy meanwhile (the JVM,
    its Python workers and this process: CPU seconds over wall seconds)."""
    cpu, t = _tree_cpu_s(os.getpid()), time.perf_counter()
    f()
    wall = time.perf_counter() - t
    return wall, (_tree_cpu_s(os.getpid()) - cpu) / wall


@dataclass
class SparkFigures:
    """What :func:`spark_section` measured: seconds per run of each case, round by round."""

    rows: int
    out_rows: int
    jvm_start_s: list[float]
    first_job_s: float = 0.0
    runs: dict[str, list[float]] = field(default_factory=dict)
    cores: dict[str, list[float]] = field(default_factory=dict)
    busy: dict[str, bool] = field(default_factory=dict)

    def rate(self, case: str) -> h.Spread:
        """Input rows per second of ``case`` (min/median/max over rounds)."""
        return h.Spread.of([self.rows / s for s in self.runs[case]])

    def per_row_ns(self, case: str, minus: str | None = None) -> h.Spread:
        """ns per input row of ``case`` (less ``minus``'s, round by round)."""
        base = self.runs[minus] if minus else [0.0] * len(self.runs[case])
        return h.Spread.of([(s - b) / self.rows * 1e9 for s, b in zip(self.runs[case], base)])

    def cpu_ns_per_row(self, case: str) -> float:
        """CPU time per input row of ``case`` (this process tree's: the JVM and the Python workers
        included), the median over rounds."""
        return statistics.median(s * c / self.rows * 1e9 for s, c in zip(self.runs[case], self.cores[case]))

    def speedup(self, one: str = "Spark udf local[1]", two: str = "Spark udf local[2]") -> h.Spread:
        """``two``'s rows/s over ``one``'s, round by round (paired by round index)."""
        return h.Spread.of([a / b for a, b in zip(self.runs[one], self.runs[two])])


def spark_section(plugin_dir: Path, *, rows: int = 2_000_000, rounds: int = 5, jvm_samples: int = 3,
                  record: h.Record | None = None, out: Callable[[str], None] = print) -> SparkFigures:
    """Measure the Spark section and print it through ``out``; add its headlines to ``record``
    (keys ``spark_*``) when given. ``plugin_dir``: a built plugins/ folder (fastmath, geo)."""
    import plutino
    from plutino.udf.spark import map_in_arrow

    plugins = [plugin_dir / "functions" / "fastmath.so", plugin_dir / "functions" / "geo.so"]
    udf = plutino.udf(plugins, select=SELECT, where=WHERE)
    data = make_table(rows)
    batches = data.to_batches(max_chunksize=BATCH_ROWS)
    engine = plutino.Engine(plugins=plugins)
    expected = engine.query(SQL, batches, schema=data.schema)
    got = pa.Table.from_batches(list(udf.map_batches(batches)))
    if got.num_rows != expected.num_rows or not got.equals(expected.cast(got.schema)):
        sys.exit("the UDF's result differs from plutino.Engine's over the same rows; the benchmark would be void")
    figures = SparkFigures(rows, expected.num_rows, jvm_start_s(jvm_samples))
    out(f"Spark: JVM start (SparkSession.getOrCreate, fresh process), min/median/max: "
        f"{h.Spread.of(figures.jvm_start_s).text('{:.1f}')} s")

    local_cases: dict[str, Callable[[], Any]] = {
        "engine": lambda: engine.query(SQL, batches, schema=data.schema),
        "udf": lambda: sum(b.num_rows for b in udf.map_batches(batches)),
    }
    with tempfile.TemporaryDirectory(prefix="plutino-bench-spark-") as tmp:
        step = -(-rows // FILES)
        for i in range(FILES):
            pq.write_table(data.slice(i * step, step), Path(tmp) / f"part-{i:02d}.parquet")
        for cores in (1, 2):
            label = f"local[{cores}]"
            spark = spark_session(label)
            try:
                df = spark.read.parquet(tmp).cache()
                if df.count() != rows:
                    sys.exit(f"Spark read {df.count()} rows of {rows}")
                mapped = map_in_arrow(df, udf)
                identity = df.mapInArrow(lambda it: it, df.schema)
                if cores == 1:
                    first = map_in_arrow(df.limit(10), udf)
                    figures.first_job_s = timed(first.collect)[0]
                    out(f"Spark: first mapInArrow job (Python worker forked, plutino imported, plugins loaded): "
                        f"{figures.first_job_s:.1f} s")
                if mapped.count() != expected.num_rows:
                    sys.exit(f"Spark's mapInArrow gave {mapped.count()} rows, plutino.Engine {expected.num_rows}")
                cases: dict[str, Callable[[], Any]] = {
                    **local_cases,
                    f"Spark scan {label}": lambda d=df: d.write.format("noop").mode("overwrite").save(),
                    f"Spark identity {label}": lambda d=identity: d.write.format("noop").mode("overwrite").save(),
                    f"Spark udf {label}": lambda d=mapped: d.write.format("noop").mode("overwrite").save(),
                }
                if cores == 2:  # the same session with the rows in one task: one worker, interleaved
                    one_task = map_in_arrow(df.coalesce(1), udf)
                    cases[ONE_TASK] = lambda d=one_task: d.write.format("noop").mode("overwrite").save()
                for f in cases.values():  # warm: Python workers up, plans compiled
                    f()
                h.METER.start(f"Spark {label}")
                for _ in range(rounds):  # the in-process cases run beside each session's: 2 x rounds
                    for name, f in cases.items():
                        wall, cores_busy = timed(f)
                        figures.runs.setdefault(name, []).append(wall)
                        figures.cores.setdefault(name, []).append(cores_busy)
                busy = h.METER.stop(f"Spark {label}").busy(h.METER.threshold)
                for name in cases:
                    figures.busy[name] = figures.busy.get(name, False) or busy
            finally:
                spark.stop()
    engine.close()
    _report(figures, out, record)
    return figures


def _report(f: SparkFigures, out: Callable[[str], None], record: h.Record | None) -> None:
    order = ["engine", "udf", "Spark scan local[1]", "Spark identity local[1]", "Spark udf local[1]",
             "Spark scan local[2]", "Spark identity local[2]", "Spark udf local[2]", ONE_TASK]
    table = [[name + ("!" if f.busy.get(name) else ""), f.rate(name).text("{:,.0f}"),
              f"{f.per_row_ns(name).median:,.0f}", f"{statistics.median(f.cores[name]):.2f}",
              f"{f.cpu_ns_per_row(name):,.0f}"] for name in order]
    out(f"\n{f.rows:,} rows in ({f.out_rows:,} out), {BATCH_ROWS:,}-row Arrow batches; rows/s min/median/max "
        "(higher is faster)")
    out(h.table(["case", "rows/s", "ns/row (median)", "cores busy (median)", "CPU ns/row (median)"], table))
    overhead = f.per_row_ns("Spark udf local[1]", minus="udf")
    handoff = f.per_row_ns("Spark identity local[1]", minus="Spark scan local[1]")
    speedup = f.speedup()
    out(f"\nSpark's per-row overhead on one core (Spark udf local[1] - udf), min/median/max: {overhead.text('{:,.0f}')}"
        f" ns/row;\n  of which the hand-off alone (identity mapInArrow - Spark's own scan into noop, local[1]):"
        f" {handoff.text('{:,.0f}')} ns/row")
    paired = f.speedup(ONE_TASK, "Spark udf local[2]")
    out(f"Spark 2 workers vs 1 (goal {GOAL_SPEEDUP}x; {os.cpu_count()} CPUs), min/median/max:"
        f"\n  local[2] vs local[1] (two sessions, one after the other): {speedup.text()}x"
        f"\n  2 tasks vs the same rows in 1 task (one local[2] session, rounds interleaved): {paired.text()}x")
    out(f"Spark udf local[1] vs plutino.Engine on one core: "
        f"{f.rate('Spark udf local[1]').median / f.rate('engine').median:.2f}x the engine's rows/s")
    if record is not None:
        busy1, busy2 = f.busy["Spark udf local[1]"], f.busy["Spark udf local[2]"]
        record.headline("spark_rate_1", "Spark mapInArrow, plutino.udf, local[1]: rows/s", f.rate("Spark udf local[1]"),
                        "rows/s", "plutino.Engine, one core: " + f"{f.rate('engine').median:,.0f} rows/s", True, busy1)
        record.headline("spark_speedup", "Spark mapInArrow, local[2] vs local[1]", speedup, "x",
                        f"goal {GOAL_SPEEDUP}x", True, busy1 or busy2)
        record.headline("spark_speedup_paired", "Spark mapInArrow, 2 tasks vs 1 in one local[2] session", paired,
                        "x", f"goal {GOAL_SPEEDUP}x", True, busy2)
        record.headline("spark_overhead", "Spark mapInArrow: per-row overhead over the udf in-process", overhead,
                        "ns", "the same udf called in-process", False, busy1)
        record.headline("spark_jvm_start", "Spark: JVM start (SparkSession.getOrCreate)",
                        h.Spread.of(f.jvm_start_s), "s", "a fresh Python process", False, False)
        record.figures["spark"] = {"rows": f.rows, "out_rows": f.out_rows, "batch_rows": BATCH_ROWS,
                                   "jvm_start_s": f.jvm_start_s, "first_job_s": f.first_job_s,
                                   "runs_s": f.runs, "cores_busy": f.cores}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and rounds (noisier)")
    parser.add_argument("--rows", type=int, help="input rows (default 2,000,000; --quick 500,000)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per Spark session (default 5; --quick 2)")
    parser.add_argument("--plugins", help="a built plugins/ folder (default: build native_plugins/ "
                                          "into build/bench-native)")
    h.add_load_options(parser)
    args = parser.parse_args(argv)
    rows = args.rows or (500_000 if args.quick else 2_000_000)
    rounds = args.rounds or (2 if args.quick else 5)
    if rows < FILES * BATCH_ROWS or rounds < 1:
        parser.error(f"--rows must be at least {FILES * BATCH_ROWS:,} and --rounds at least 1")
    try:
        import pyspark
    except ImportError:
        h.refuse("pyspark is not installed: pip install '.[scaleout]' (and Java >= 17: tools/system-deps.sh test)")
    h.METER.threshold, h.METER.strict = args.load_threshold, args.strict
    plugin_dir = h.plugin_dir(args.plugins, ["fastmath", "geo"])
    method = f"method: {rounds} interleaved rounds per Spark session, each case one full run; {rows:,} rows"
    print("machine:", h.machine(), f"pyspark {pyspark.__version__}")
    print(method)
    rec = h.Record("scaleout_spark", method, h.machine() + f", pyspark {pyspark.__version__}")
    spark_section(plugin_dir, rows=rows, rounds=rounds, jvm_samples=1 if args.quick else 3, record=rec)
    print(h.METER.summary())
    if not args.no_save:
        print(f"results saved to {rec.save(h.METER).relative_to(h.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
