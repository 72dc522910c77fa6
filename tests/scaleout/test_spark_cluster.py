"""plutino.udf on a Spark standalone cluster started by the test: a master and a worker as real
processes (``spark-class org.apache.spark.deploy.master.Master`` and ``...worker.Worker``) on
loopback ports, the driver in this process, the UDF (plugin bytes inside its pickle) running in
the worker's executor JVM's Python workers. Killed at the end.
"""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import plutino
from plutino.udf.spark import map_in_arrow
from spark_helpers import SELECT, SQL, WHERE, Standalone, plugins, rows, session, table, to_arrow

pytestmark = [pytest.mark.scaleout,
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")]

APP = "plutino-test-standalone"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with Standalone(tmp_path_factory.mktemp("spark-standalone"), cores=2, memory="1g") as c:
        yield c


@pytest.fixture(scope="module")
def spark(cluster):
    with session(cluster.url, APP, {"spark.executor.memory": "512m", "spark.executor.cores": "2",
                                    "spark.cores.max": "2",
                                    "spark.sql.execution.arrow.maxRecordsPerBatch": "1000"}) as s:
        yield s


def test_map_in_arrow_on_a_standalone_cluster_gives_the_engines_rows(spark, cluster, plugin_build, tmp_path):
    # the tasks' Python workers descend from the Worker daemon the test started (which launched
    # the executor JVM), not from the driver's JVM as in local mode
    def ancestors(_: object) -> list[int]:  # nested: cloudpickle sends it by value to the executor
        chain, pid = [], os.getpid()
        while pid > 1:
            with open(f"/proc/{pid}/stat") as stat:
                pid = int(stat.read().rsplit(")", 1)[1].split()[1])
            chain.append(pid)
        return chain

    chains = spark.sparkContext.parallelize(range(4), 2).map(ancestors).collect()
    worker_pid = cluster.procs[1].pid
    assert all(worker_pid in chain for chain in chains), (chains, worker_pid)
    # the application runs on the cluster: the master lists it, with the worker's cores
    [app] = [a for a in cluster.state()["activeapps"] if a["name"] == APP]
    assert app["cores"] == 2

    # the plugins travel in the pickle: the executors are handed a copy, not this path
    udf = plutino.udf(plugins(plugin_build), select=SELECT, where=WHERE)
    parts = [table(3_000, seed=40 + i, start=i * 3_000) for i in range(2)]
    for i, part in enumerate(parts):
        pq.write_table(part, tmp_path / f"part-{i}.parquet")
    out = map_in_arrow(spark.read.parquet(str(tmp_path)), udf)
    got = rows(to_arrow(out))
    with plutino.Engine(plugins=plugins(plugin_build)) as engine:
        expected = rows(engine.query(SQL, pa.concat_tables(parts)))
    assert 0 < len(expected) < 6_000
    assert got == expected


def test_the_cluster_processes_are_the_tests_own(cluster):
    """The master and the worker are this test's processes, alive, and the master counts one
    alive worker with the cores it was started with."""
    assert all(p.poll() is None for p in cluster.procs)
    state = cluster.state()
    assert state["url"] == cluster.url
    assert [w["cores"] for w in state["workers"] if w["state"] == "ALIVE"] == [2]
