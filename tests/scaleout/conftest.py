"""Fixtures of the scale-out tests (plutino.udf in Ray Data and Spark).

``functions`` / ``source_so`` / ``sink_so``: the bundled plugins built into build/native
(tests/conftest.py's ``plugin_build``). ``geo``: a function of a table of ``id`` s giving the
same deterministic coordinates for the driver and for the workers that make them (in Arrow
compute: ten million rows cost a fraction of a second and never cross the object store whole).
``ray_local``: one real local Ray cluster per test module (``ray.init(num_cpus=2)``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest


@pytest.fixture(scope="session")
def functions(plugin_build: Path) -> Path:
    return plugin_build / "functions"


@pytest.fixture(scope="session")
def source_so(plugin_build: Path) -> Path:
    return plugin_build / "sources" / "random.so"


@pytest.fixture(scope="session")
def sink_so(plugin_build: Path) -> Path:
    return plugin_build / "sinks" / "file.so"


def geo_columns(batch: pa.RecordBatch | pa.Table) -> pa.Table:
    """Coordinates made from the ``id`` column: two points per row, spread over the globe."""
    ids = batch.column("id")
    f = pc.cast(ids, pa.float64())
    lat = pc.subtract(pc.cast(pc.remainder(ids, 1799), pa.float64()), 899.0)
    lon = pc.subtract(pc.cast(pc.remainder(ids, 3593), pa.float64()), 1796.0)
    return pa.table({
        "id": ids,
        "lat": pc.divide(lat, 10.0),
        "lon": pc.divide(lon, 10.0),
        "lat2": pc.divide(pc.subtract(pc.cast(pc.remainder(ids, 997), pa.float64()), 498.0), 6.0),
        "lon2": pc.divide(pc.subtract(pc.cast(pc.remainder(f, 1201.0), pa.float64()), 600.0), 4.0),
    })


@pytest.fixture(scope="session")
def geo() -> Any:
    """:func:`geo_columns` (a fixture: test modules do not import a conftest by name)."""
    return geo_columns


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real local Ray cluster of 2 CPUs for the module (no dashboard; workers' logs stay in
    their files). Its workers find the in-tree packages (PYTHONPATH), as the tests do."""
    ray = pytest.importorskip("ray", reason="needs the scaleout extra: pip install '.[scaleout]'")
    # the data helpers above travel by value: a worker need not import this conftest by name
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    root = Path(__file__).resolve().parents[2]
    paths = [str(root / "host"), str(root / "contract")]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=2 << 30,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")])}},
             _temp_dir=str(tmp_path_factory.mktemp("ray")))
    try:
        yield ray
    finally:
        ray.shutdown()
