"""plutino.udf in PySpark on ``local[2]`` (a real JVM, Python workers forked by Spark): mapInArrow
over parquet files, a per-batch aggregate combined by Spark, and Structured Streaming over a
folder of files, each checked value by value against plutino.Engine over the same rows.

The standalone cluster (a master and a worker process) is test_spark_cluster.py's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import plutino
from plutino.errors import PlutinoError
from plutino.udf.spark import SparkBatches, map_in_arrow, spark_type
from spark_helpers import SELECT, SQL, WHERE, plugins, rows, session, table, to_arrow

pytestmark = [pytest.mark.scaleout,
              # pyspark 4.x on pandas 3 (which ray[data] brings) says so at each mapInArrow
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")]

#: Four files of 2,500 rows: four partitions on two cores, each handed over in 1,000-row batches.
FILES, ROWS_PER_FILE = 4, 2_500


@pytest.fixture(scope="module")
def spark():
    with session("local[2]", "plutino-test-spark",
                 {"spark.sql.execution.arrow.maxRecordsPerBatch": "1000"}) as s:
        yield s


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, pa.Table]:
    folder = tmp_path_factory.mktemp("parquet")
    parts = [table(ROWS_PER_FILE, seed=i, start=i * ROWS_PER_FILE) for i in range(FILES)]
    for i, part in enumerate(parts):
        pq.write_table(part, folder / f"part-{i}.parquet")
    return folder, pa.concat_tables(parts)


@pytest.fixture(scope="module")
def udf(plugin_build):
    return plutino.udf(plugins(plugin_build), select=SELECT, where=WHERE)


@pytest.fixture(scope="module")
def engine(plugin_build):
    with plutino.Engine(plugins=plugins(plugin_build)) as e:
        yield e


def test_map_in_arrow_gives_the_engines_rows_value_by_value(spark, data, udf, engine):
    folder, whole = data
    df = spark.read.parquet(str(folder))
    assert df.rdd.getNumPartitions() >= 2
    out = map_in_arrow(df, udf)
    assert [(f.name, f.dataType.simpleString()) for f in out.schema.fields] == [
        ("id", "bigint"), ("x2", "double"), ("up", "string"), ("km", "double"), ("h", "string"), ("ts", "timestamp")]
    got = rows(to_arrow(out))
    expected = rows(engine.query(SQL, whole))
    assert 0 < len(expected) < whole.num_rows  # the filter kept some rows and dropped others
    assert len(got) == len(expected)
    assert got == expected
    # nulls went through the plugins: a null name gives a null upperAscii
    assert any(r["up"] is None for r in got)


def test_a_per_batch_aggregate_combined_by_sparks_group_by(spark, data, plugin_build, engine):
    """An aggregate UDF gives one row per group per batch (batches of at most 1,000 rows here); Spark's
    groupBy adds the partial counts and sums up to the engine's totals over the whole data."""
    from pyspark.sql import functions as F

    folder, whole = data
    f = plutino.udf(plugins(plugin_build), select="name, count(*) AS n, sum(mul2add1(x)) AS s", group_by="name")
    partial = map_in_arrow(spark.read.parquet(str(folder)), f)
    groups = whole.column("name").unique()
    assert partial.count() > len(groups)  # partial: the groups come once per batch, not once
    total = to_arrow(partial.groupBy("name").agg(F.sum("n").alias("n"), F.sum("s").alias("s")))
    want = engine.query("SELECT name, count(*) AS n, sum(mul2add1(x)) AS s FROM s GROUP BY name, TUMBLINGWINDOW(dd, 1)",
                        whole)
    got = {r["name"]: r for r in total.to_pylist()}
    assert set(got) == set(want.column("name").to_pylist())
    for r in want.to_pylist():
        assert got[r["name"]]["n"] == r["n"]
        assert got[r["name"]]["s"] == pytest.approx(r["s"], rel=1e-12)  # summed in another order


def test_structured_streaming_over_files_with_the_same_udf(spark, udf, engine, tmp_path):
    """A file source read as a stream (one file per micro-batch), the UDF through mapInArrow, a
    memory sink: each file's rows come out as the engine computes them, and a file added later
    is picked up by the running query."""
    incoming = tmp_path / "in"
    incoming.mkdir()
    parts = [table(800, seed=100 + i, start=100_000 + i * 800) for i in range(3)]
    for i, part in enumerate(parts[:2]):
        pq.write_table(part, incoming / f"batch-{i}.parquet")
    stream = spark.readStream.schema(spark.read.parquet(str(incoming)).schema) \
        .option("maxFilesPerTrigger", 1).parquet(str(incoming))
    assert stream.isStreaming
    query = (map_in_arrow(stream, udf).writeStream.format("memory").queryName("plutino_stream")
             .option("checkpointLocation", str(tmp_path / "checkpoint")).outputMode("append").start())
    try:
        query.processAllAvailable()
        first = rows(to_arrow(spark.table("plutino_stream")))
        assert first == rows(engine.query(SQL, pa.concat_tables(parts[:2])))
        # a new file, dropped as Spark's file source wants it (written elsewhere, then renamed in):
        # the running query takes it in
        pq.write_table(parts[2], tmp_path / "batch-2.parquet")
        (tmp_path / "batch-2.parquet").rename(incoming / "batch-2.parquet")
        query.processAllAvailable()
        assert query.exception() is None
        got = rows(to_arrow(spark.table("plutino_stream")))
        assert got == rows(engine.query(SQL, pa.concat_tables(parts)))
        assert len(got) > len(first)
        assert sum(1 for p in query.recentProgress if p["numInputRows"] > 0) == 3  # one micro-batch a file
    finally:
        query.stop()


def test_large_strings_spark_hands_with_use_large_var_types_reach_the_plugins_as_strings(spark, udf, engine):
    """With spark.sql.execution.arrow.useLargeVarTypes Spark hands strings as Arrow large_string,
    which a plugin's string argument does not take: the wrapper hands them over as string."""
    part = table(300, seed=7)
    df = spark.createDataFrame(part.to_pylist(), schema="id long, name string, x double, lat double, lon double,"
                                                         " ts timestamp")
    key = "spark.sql.execution.arrow.useLargeVarTypes"
    spark.conf.set(key, "true")
    try:
        handed = df.select("name").mapInArrow(
            lambda it: (pa.RecordBatch.from_pydict({"t": [str(b.schema.field("name").type)]}) for b in it), "t string")
        assert {r["t"] for r in handed.collect()} == {"large_string"}
        got = rows(to_arrow(map_in_arrow(df, udf)))
    finally:
        spark.conf.unset(key)
    assert got == rows(engine.query(SQL, part))


def test_bad_input_is_refused_in_the_driver_with_the_problem_named(spark, data, plugin_build):
    folder, whole = data
    df = spark.read.parquet(str(folder))
    udf = plutino.udf(plugins(plugin_build), select="mul2add1(temperature) AS t2")
    with pytest.raises(PlutinoError, match="unknown column 'temperature'.* has columns: id, lat, lon, name, ts, x"):
        map_in_arrow(df, udf)  # planned before any Spark job: no task fails in an executor
    with pytest.raises(PlutinoError, match="needs a pyspark DataFrame.*got pyarrow.lib.Table"):
        map_in_arrow(whole, udf)
    with pytest.raises(PlutinoError, match=r"expected a plutino.udf\(...\) \(ArrowUdf\), got function"):
        map_in_arrow(df, lambda batches: batches)


def test_pyspark_is_imported_by_the_spark_functions_only():
    """``import plutino`` and ``import plutino.udf.spark`` leave pyspark (and its JVM) alone."""
    code = "import sys, plutino, plutino.udf.spark; print(sorted(m for m in sys.modules if m.startswith('py4j')" \
           " or m.startswith('pyspark')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_result_types_spark_lacks_are_widened_or_refused(plugin_build):
    """Unsigned integers widen, nanosecond timestamps become Spark's microseconds (declared type
    and the batches handed back alike, sub-microseconds cut off as Spark does); a type with no
    Spark counterpart is refused by name, and so is a value out of the declared type's range."""
    from pyspark.sql import types as T

    assert spark_type("u", pa.uint32()) == T.LongType()
    assert spark_type("u", pa.uint64()) == T.DecimalType(20, 0)
    assert spark_type("ts", pa.timestamp("ns", tz="UTC")) == T.TimestampType()
    assert spark_type("ts", pa.timestamp("ns")) == T.TimestampNTZType()
    assert spark_type("d", pa.dictionary(pa.int32(), pa.string())) == T.StringType()
    with pytest.raises(PlutinoError, match="result column 'iv' is month_day_nano_interval.*CAST"):
        spark_type("iv", pa.month_day_nano_interval())

    f = plutino.udf(plugins(plugin_build), select="id, u, ts")
    batch = pa.record_batch({"id": pa.array([1, 2], pa.int64()), "u": pa.array([7, 4_000_000_000], pa.uint32()),
                             "ts": pa.array([1_500, 2_000_000], pa.timestamp("ns", tz="UTC"))})
    want = pa.schema([("id", pa.int64()), ("u", pa.int64()), ("ts", pa.timestamp("us", tz="UTC"))])
    [out] = list(SparkBatches(f, want)(iter([batch])))
    assert out.schema == want
    assert out.to_pydict() == {"id": [1, 2], "u": [7, 4_000_000_000],
                               "ts": pa.array([1, 2_000], pa.timestamp("us", tz="UTC")).to_pylist()}  # 1,500 ns: 1 us
    too_big = pa.schema([("id", pa.int64()), ("u", pa.int32()), ("ts", pa.timestamp("us", tz="UTC"))])
    with pytest.raises(PlutinoError, match="result column 'u' \\(uint32\\) does not convert to the type declared"):
        list(SparkBatches(f, too_big)(iter([batch])))
