"""plutino.udf in a real local Ray cluster: Ray Data's map_batches over ten million rows, an
actor pool that loads the plugins once per actor, a source plugin read as a datasource and a
sink plugin written as a datasink; every result compared, value by value, with plutino.Engine
running the same SQL over the same rows in this process."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import plutino
from plutino.native.loader import load_plugin

#: a stuck cluster fails its test within a minute or two, not at the suite's 300 s
pytestmark = [pytest.mark.scaleout, pytest.mark.timeout(150)]

SELECT = "id, haversine(lat, lon, lat2, lon2) AS d, geohash(lat, lon, 7) AS h, mul2add1(lat) AS m"
WHERE = "lat > -60 AND lon < 170"
ENGINE_SQL = f"SELECT {SELECT} FROM s WHERE {WHERE}"


def ids(n: int) -> pa.Table:
    return pa.table({"id": pa.array(np.arange(n, dtype=np.int64))})


def expected(functions: Path, data: pa.Table, sql: str = ENGINE_SQL) -> pa.Table:
    with plutino.Engine([functions / "geo.so", functions / "fastmath.so"]) as engine:
        return engine.query(sql, data)


def gathered(ray: Any, ds: Any) -> pa.Table:
    """Every row of ``ds`` in this process, ordered by id."""
    parts = [t for t in ray.get(ds.to_arrow_refs()) if t.num_rows]
    return pa.concat_tables(parts).sort_by("id").combine_chunks()


def test_map_batches_over_ten_million_rows_equals_the_engine(ray_local: Any, functions: Path, geo: Any) -> None:
    ray = ray_local
    n = 10_000_000
    f = plutino.udf([functions / "geo.so", functions / "fastmath.so"], select=SELECT, where=WHERE)
    ds = (ray.data.range(n, override_num_blocks=20)
          .map_batches(geo, batch_format="pyarrow", batch_size=None)
          .map_batches(f, batch_format="pyarrow", batch_size=None))
    got = gathered(ray, ds)
    want = expected(functions, geo(ids(n))).combine_chunks()
    assert got.schema == want.schema == f.output_schema(geo(ids(1)).schema)
    assert 0.5 * n < got.num_rows < n  # the WHERE dropped some rows, not all
    assert got.equals(want)  # every value of every row


class PerActor:
    """Ray's actor-pool shape (a callable class): the UDF, plus the process id and this
    process's plugin load count after each batch, for the test to see."""

    def __init__(self, f: Any) -> None:
        self.f = f

    def __call__(self, batch: pa.Table) -> pa.Table:
        out = self.f(batch)
        n = out.num_rows
        return (out.append_column("pid", pa.array(np.full(n, os.getpid(), np.int64)))
                .append_column("loads", pa.array(np.full(n, plutino.udf.load_count(), np.int64))))


def test_actor_pool_loads_the_plugins_once_per_actor(ray_local: Any, functions: Path, geo: Any) -> None:
    ray = ray_local
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # PerActor travels by value
    n = 1_000_000
    f = plutino.udf([functions / "geo.so", functions / "fastmath.so"], select=SELECT, where=WHERE)
    ds = (ray.data.range(n, override_num_blocks=16)
          .map_batches(geo, batch_format="pyarrow", batch_size=None)
          # half a CPU each: the two actors leave the cluster's 2 CPUs room for the tasks feeding them
          .map_batches(PerActor, fn_constructor_args=(f,), compute=ray.data.ActorPoolStrategy(size=2), num_cpus=0.5,
                       batch_format="pyarrow", batch_size=25_000))
    got = gathered(ray, ds)
    per_pid = got.group_by("pid").aggregate([("loads", "min"), ("loads", "max"), ("id", "count")])
    assert per_pid.num_rows == 2, per_pid  # two actors, two processes
    # each actor loaded the two plugins at most once (once, unless its process had them from an
    # earlier task) and never again over its many batches
    assert per_pid.column("loads_min") == per_pid.column("loads_max")
    assert all(0 < v <= 2 for v in per_pid.column("loads_max").to_pylist())
    assert all(c > 25_000 for c in per_pid.column("id_count").to_pylist())  # several batches each
    want = expected(functions, geo(ids(n)))
    assert got.drop_columns(["pid", "loads"]).equals(want.combine_chunks())


def test_per_batch_group_by_combines_to_the_engine_totals(ray_local: Any, functions: Path, geo: Any) -> None:
    ray = ray_local
    n = 1_000_000
    f = plutino.udf(functions / "geo.so", select="geohash(lat, lon, 1) AS cell, count(*) AS n, sum(lat2) AS s,"
                    " max(haversine(lat, lon, lat2, lon2)) AS far", group_by="cell")
    ds = (ray.data.range(n, override_num_blocks=8)
          .map_batches(geo, batch_format="pyarrow", batch_size=None)
          .map_batches(f, batch_format="pyarrow", batch_size=None))
    parts = pa.concat_tables(ray.get(ds.to_arrow_refs()))
    assert parts.num_rows > 32  # one row per cell per batch: partial results, more than the cells
    got = parts.group_by("cell").aggregate([("n", "sum"), ("s", "sum"), ("far", "max")]).sort_by("cell")
    want = expected(functions, geo(ids(n)),
                    "SELECT geohash(lat, lon, 1) AS cell, count(*) AS n, sum(lat2) AS s,"
                    " max(haversine(lat, lon, lat2, lon2)) AS far FROM s GROUP BY cell, TUMBLINGWINDOW(dd, 1)"
                    ).sort_by("cell")
    assert got.column("cell") == want.column("cell")
    assert got.column("n_sum") == want.column("n")
    assert got.column("far_max") == want.column("far")
    assert np.allclose(got.column("s_sum").to_numpy(), want.column("s").to_numpy(), rtol=1e-9)


def test_source_plugin_datasource_to_sink_plugin_datasink(ray_local: Any, functions: Path, source_so: Path,
                                                          sink_so: Path, tmp_path: Path) -> None:
    ray = ray_local
    pattern = {"count": 50, "temperature": 30.0, "name": "sensor"}
    configs = [{"interval": 0, "batch_size": 5000, "seed": seed, "pattern": pattern} for seed in (11, 12, 13)]
    source = plutino.udf.PluginDatasource(source_so, configs, batches=12)
    assert source.schema().names == ["count", "temperature", "name"]
    f = plutino.udf(functions / "fastmath.so", select="count, mul2add1(temperature) AS t2, upperAscii(name) AS n",
                    where="count > 10")
    out = tmp_path / "out.jsonl"
    sink = plutino.udf.PluginDatasink(sink_so, {"path": str(out)})
    ray.data.read_datasource(source).map_batches(f, batch_format="pyarrow").write_datasink(sink)

    # the same batches, read here from the same plugin with the same seeds, through the Engine
    plugin = load_plugin(source_so)
    batches = []
    for config in configs:
        src = plugin.create(config)
        src.open()
        batches += [src.next(5.0) for _ in range(4)]  # 12 batches over 3 tasks: 4 each
        src.close()
    with plutino.Engine([functions / "fastmath.so"]) as engine:
        want = engine.query("SELECT count, mul2add1(temperature) AS t2, upperAscii(name) AS n FROM s"
                            " WHERE count > 10", pa.Table.from_batches(batches))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sink.rows_written == len(rows) == want.num_rows > 0
    key = ["count", "t2", "n"]
    got = pa.Table.from_pylist(rows).select(key).sort_by([(k, "ascending") for k in key])
    assert got.equals(want.sort_by([(k, "ascending") for k in key]))
    assert set(pc.unique(got.column("n")).to_pylist()) == {"SENSOR"}


def test_a_plugin_that_crashes_fails_its_task_not_the_driver(ray_local: Any, functions: Path,
                                                             plugin_build: Path) -> None:
    """h_segv_call segfaults on its 3rd call in a process: the Ray worker running it dies, the
    job fails with Ray's error in this process, and the same cluster then runs a good UDF."""
    ray = ray_local
    crash = plutino.udf(plugin_build / "hostile" / "h_segv_call.so", select="h_segv_call(x) AS y")
    ds = ray.data.from_arrow([pa.table({"x": pa.array([i, i + 1], pa.int64())}) for i in range(8)])
    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ds.map_batches(crash, batch_format="pyarrow", batch_size=None, max_retries=0).materialize()
    good = plutino.udf(functions / "fastmath.so", select="x, mul2add1(x) AS y")
    got = pa.concat_tables(ray.get(ds.map_batches(good, batch_format="pyarrow").to_arrow_refs())).sort_by("x")
    assert got.column("y").to_pylist() == [2 * x + 1 for x in got.column("x").to_pylist()]
    assert got.num_rows == 16
