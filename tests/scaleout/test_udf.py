"""plutino.udf without a cluster: the results of plutino.Engine, the shapes Ray and Spark call
(RecordBatch, Table, an iterator of batches, the output schema up front), a pickle that carries
the plugin to a process where the file is gone, one load per process, and clear refusals."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import plutino
from plutino.engine import SqlError
from plutino.errors import PluginRefused, PlutinoError

pytestmark = pytest.mark.scaleout

SELECT = "id, haversine(lat, lon, lat2, lon2) AS d, geohash(lat, lon, 7) AS h, mul2add1(lat) AS m"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(geo: Any) -> pa.Table:
    return geo(pa.table({"id": pa.array(np.arange(50_000, dtype=np.int64))}))


@pytest.fixture(scope="module")
def both(functions: Path) -> list[Path]:
    return [functions / "geo.so", functions / "fastmath.so"]


def engine_result(plugins: list[Path], sql: str, data: pa.Table) -> pa.Table:
    with plutino.Engine(plugins) as engine:
        return engine.query(sql, data)


def test_batch_and_table_give_the_engine_result(both: list[Path], data: pa.Table) -> None:
    f = plutino.udf(both, select=SELECT, where="lat > 0")
    want = engine_result(both, f"SELECT {SELECT} FROM s WHERE lat > 0", data).combine_chunks()
    table = f(data)
    assert isinstance(table, pa.Table) and table.combine_chunks().equals(want)
    batch = f(data.combine_chunks().to_batches()[0])
    assert isinstance(batch, pa.RecordBatch) and pa.Table.from_batches([batch]).equals(want)
    assert f.output_schema(data.schema) == want.schema == table.schema
    assert 0 < want.num_rows < data.num_rows


def test_map_batches_is_mapinarrow_shaped(both: list[Path], data: pa.Table) -> None:
    f = plutino.udf(both, select=SELECT, where="lon > 100")
    parts = data.to_batches(max_chunksize=7_000)
    out = list(f.map_batches(iter(parts)))
    schema = f.output_schema(data.schema)
    assert all(isinstance(b, pa.RecordBatch) and b.schema == schema and b.num_rows for b in out)
    want = engine_result(both, f"SELECT {SELECT} FROM s WHERE lon > 100", data)
    assert pa.Table.from_batches(out).equals(want.combine_chunks())
    assert list(f.map_batches(iter(parts[:1] * 0))) == []
    nothing = f(data.slice(0, 0))  # no rows in: no rows out, of the output schema
    assert nothing.num_rows == 0 and nothing.schema == schema


def test_star_and_builtins_only(data: pa.Table) -> None:
    f = plutino.udf([], select="*, lat * 2 AS lat2x", where="id % 1000 = 0")
    out = f(data)
    assert out.column_names == [*data.column_names, "lat2x"]
    assert out.column("id").to_pylist() == list(range(0, 50_000, 1000))


def test_aggregates_run_per_call(both: list[Path], data: pa.Table) -> None:
    f = plutino.udf(both, select="geohash(lat, lon, 1) AS cell, count(*) AS n, avg(mul2add1(lat)) AS a",
                    group_by="cell")
    sql = ("SELECT geohash(lat, lon, 1) AS cell, count(*) AS n, avg(mul2add1(lat)) AS a FROM s"
           " GROUP BY cell, TUMBLINGWINDOW(dd, 1)")
    assert f(data).sort_by("cell").equals(engine_result(both, sql, data).sort_by("cell"))
    total = plutino.udf([], select="count(*) AS n, max(id) AS top")  # no keys: one row per call
    assert total(data).to_pylist() == [{"n": 50_000, "top": 49_999}]
    halves = [total(data.slice(0, 20_000)), total(data.slice(20_000))]
    assert [t.column("n")[0].as_py() for t in halves] == [20_000, 30_000]


def test_pickle_carries_the_plugin_to_a_process_without_the_file(functions: Path, data: pa.Table,
                                                                 tmp_path: Path) -> None:
    copy = tmp_path / "lib" / "geo_copy.so"
    copy.parent.mkdir()
    shutil.copy(functions / "geo.so", copy)
    f = plutino.udf(copy, select="id, geohash(lat, lon, 5) AS h")
    blob = pickle.dumps(f)
    shutil.rmtree(copy.parent)  # another machine: the file is not there
    (tmp_path / "udf.pickle").write_bytes(blob)
    with pa.OSFile(str(tmp_path / "in.arrow"), "wb") as sink, pa.ipc.new_file(sink, data.schema) as writer:
        writer.write_table(data.slice(0, 1000))
    script = f"""
import os, pickle, pyarrow as pa, plutino.udf
f = pickle.loads(open({str(tmp_path / 'udf.pickle')!r}, "rb").read())
table = pa.ipc.open_file({str(tmp_path / 'in.arrow')!r}).read_all()
assert plutino.udf.load_count() == 0
for _ in range(3):
    out = f(table)
    f2 = pickle.loads(pickle.dumps(f))  # another copy of the UDF: the same load
    f2(table.to_batches()[0])
print(plutino.udf.load_count(), out.column("h").to_pylist()[:3])
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": f"{ROOT / 'host'}:{ROOT / 'contract'}", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    loads, first = proc.stdout.split(" ", 1)
    assert loads == "1"  # one dlopen for three calls and two copies of the UDF
    want = engine_result([functions / "geo.so"], "SELECT geohash(lat, lon, 5) AS h FROM s", data.slice(0, 3))
    assert first.strip() == repr(want.column("h").to_pylist())


def test_package_zip(zips: Path, data: pa.Table, functions: Path) -> None:
    f = plutino.udf(zips / "geo.zip", select="id, haversine(lat, lon, lat2, lon2) AS d")
    want = engine_result([functions / "geo.so"], "SELECT id, haversine(lat, lon, lat2, lon2) AS d FROM s", data)
    assert f(data).combine_chunks().equals(want.combine_chunks())
    assert pickle.loads(pickle.dumps(f))(data).num_rows == data.num_rows


def test_not_embedded_refuses_a_changed_file(functions: Path, data: pa.Table, tmp_path: Path) -> None:
    copy = tmp_path / "fm.so"
    copy.write_bytes((functions / "fastmath.so").read_bytes() + b"\0")  # content of its own: not loaded yet
    f = plutino.udf(copy, select="mul2add1(lat) AS m", embed=False, check=False)
    blob = pickle.dumps(f)
    assert len(blob) < 4096  # the path and the sha256, not the bytes
    copy.write_bytes(copy.read_bytes() + b"\0")
    with pytest.raises(PlutinoError, match="differs from the one the UDF was built with.*embed=True"):
        pickle.loads(blob)(data)


def test_refusals_name_the_file_and_the_fix(plugin_build: Path, functions: Path, source_so: Path) -> None:
    with pytest.raises(PlutinoError, match=r"'/nowhere/geo.so' does not exist; pass the path of a plugin \.so"):
        plutino.udf("/nowhere/geo.so", select="geohash(a, b, 3)")
    with pytest.raises(PluginRefused, match="abi_major_too_new.so") as refused:
        plutino.udf(plugin_build / "broken" / "abi_major_too_new.so", select="x")
    assert refused.value.fix
    with pytest.raises(PluginRefused, match="random.so") as refused:
        plutino.udf(source_so, select="x")  # a source is not a function library
    assert "function" in str(refused.value)
    with pytest.raises(PluginRefused, match="no_tag.so"):
        plutino.udf(plugin_build / "broken" / "no_tag.so", select="x")


def test_sql_mistakes_point_at_the_argument(functions: Path) -> None:
    geo = functions / "geo.so"
    with pytest.raises(SqlError, match="unknown function 'mul2add1'.*pass the plugin that provides it to plutino.udf"):
        plutino.udf(geo, select="geohash(lat, lon, 3) AS h, mul2add1(lat) AS m")
    with pytest.raises(SqlError, match="unknown function 'nofn' in where= at col 5"):
        plutino.udf(geo, select="geohash(lat, lon, 3) AS h", where="1 < nofn(lat)")
    with pytest.raises(SqlError, match="cannot parse the SQL: expecting \\) near 'FROM' at the end of select="):
        plutino.udf(geo, select="geohash(lat, lon, 3) AS h, (lat")
    with pytest.raises(SqlError, match="'>' is incomplete in where= at col 5"):
        plutino.udf(geo, select="lat", where="lat >")
    with pytest.raises(SqlError, match="haversine"):
        plutino.udf(geo, select="haversine(lat, lon) AS d")  # 2 arguments of 4
    with pytest.raises(PlutinoError, match="needs select="):
        plutino.udf(geo, select=" ")
    f = plutino.udf(geo, select="geohash(lat, lon, 3) AS h")
    with pytest.raises(TypeError, match='batch_format="pyarrow"'):
        f({"lat": [1.0]})  # type: ignore[type-var]


def test_import_plutino_does_not_import_ray() -> None:
    script = "import sys, plutino, plutino.udf; plutino.udf.ArrowUdf; print('ray' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": f"{ROOT / 'host'}:{ROOT / 'contract'}", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
