"""What the Spark tests share (and bench/scaleout_spark.py reuses): the data, the UDF's SQL, a
small-footprint SparkSession, a standalone master + worker as real processes, and turning a
result into rows to compare value by value.

One SparkSession per test module: the JVM (py4j's gateway) starts once per process and a
session stopped by one module is followed by the next module's on the same JVM.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

#: The UDF's select list and filter; the Engine runs the same as ``SELECT ... FROM s WHERE ...``.
SELECT = ("id, mul2add1(x) AS x2, upperAscii(name) AS up, haversine(lat, lon, 48.8566, 2.3522) AS km,"
          " geohash(lat, lon, 7) AS h, ts")
WHERE = "x > 10"
SQL = f"SELECT {SELECT} FROM s WHERE {WHERE}"

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def table(n: int, seed: int = 18, start: int = 0) -> pa.Table:
    """``n`` deterministic rows with ids from ``start``: floats with nulls, strings with nulls,
    coordinates and UTC timestamps."""
    rnd = random.Random(seed)
    ids = list(range(start, start + n))
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "name": pa.array([None if i % 97 == 0 else f"sensor-{i % 13}-ab" for i in ids], pa.string()),
        "x": pa.array([None if i % 89 == 0 else rnd.uniform(0, 40) for i in ids], pa.float64()),
        "lat": pa.array([rnd.uniform(-80, 80) for _ in ids], pa.float64()),
        "lon": pa.array([rnd.uniform(-179, 179) for _ in ids], pa.float64()),
        "ts": pa.array([T0 + timedelta(milliseconds=37 * i) for i in ids], pa.timestamp("us", tz="UTC")),
    })


def plugins(plugin_dir: Path) -> list[Path]:
    return [plugin_dir / "functions" / "fastmath.so", plugin_dir / "functions" / "geo.so"]


def rows(data: pa.Table, key: str = "id") -> list[dict[str, Any]]:
    """The rows of ``data`` ordered by ``key``, as Python values (timestamps as aware datetimes,
    which compare as instants whatever their time zone's name)."""
    return sorted(data.to_pylist(), key=lambda r: r[key])


def to_arrow(df: Any) -> pa.Table:
    """A Spark DataFrame's rows as a pyarrow Table (DataFrame.toArrow, Spark >= 4)."""
    if hasattr(df, "toArrow"):
        return df.toArrow()
    return pa.Table.from_pylist([r.asDict() for r in df.collect()])


def code_path() -> str:
    """The folders this process imports plutino and plutino_contract from, for the executors'
    Python workers: they run the same code as the driver."""
    import plutino
    import plutino_contract

    return os.pathsep.join(dict.fromkeys(str(Path(m.__file__).resolve().parents[1])
                                         for m in (plutino, plutino_contract)))


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


@contextmanager
def session(master: str, app: str, conf: dict[str, str] | None = None) -> Iterator[Any]:
    """A SparkSession on ``master`` with a small footprint (no UI, 2 shuffle partitions, 512 MiB
    driver; ``conf`` on top), Python workers running this interpreter with this process's plutino; stopped at
    the end."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (SparkSession.builder.master(master).appName(app)
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.driver.memory", "512m")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.executorEnv.PYTHONPATH", code_path())
               .config("spark.sql.session.timeZone", "UTC"))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        spark.stop()


class Standalone:
    """A Spark standalone cluster of real processes on loopback: one master, one worker
    (``spark-class org.apache.spark.deploy.master.Master`` / ``...worker.Worker``)."""

    def __init__(self, workdir: Path, cores: int = 2, memory: str = "1g") -> None:
        from helpers import free_port

        self.workdir = workdir
        self.port, self.ui_port, self.worker_ui_port = free_port(), free_port(), free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.cores, self.memory = cores, memory
        self.procs: list[subprocess.Popen[bytes]] = []

    def _start(self, name: str, *args: str) -> None:
        home = spark_home()
        env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1",
               "SPARK_DAEMON_MEMORY": "256m", "SPARK_LOG_DIR": str(self.workdir),
               "PYSPARK_PYTHON": sys.executable}
        log = open(self.workdir / f"{name}.log", "wb")
        self.procs.append(subprocess.Popen([str(home / "bin" / "spark-class"), *args], env=env, stdout=log,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                           start_new_session=True))
        log.close()

    def state(self) -> dict[str, Any]:
        """The master's status (its web UI's /json/)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as r:
            return json.load(r)

    def _alive_workers(self) -> int:
        for p in self.procs:
            if p.poll() is not None:
                raise AssertionError(f"a Spark daemon exited with {p.returncode}: {self.logs()}")
        try:
            return int(self.state().get("aliveworkers", 0))
        except OSError:
            return 0

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.workdir.glob("*.log")))

    def __enter__(self) -> Standalone:
        from helpers import wait_for

        (self.workdir / "work").mkdir(parents=True, exist_ok=True)
        self._start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                    "--port", str(self.port), "--webui-port", str(self.ui_port))
        self._start("worker", "org.apache.spark.deploy.worker.Worker", self.url, "--host", "127.0.0.1",
                    "--cores", str(self.cores), "--memory", self.memory, "--webui-port", str(self.worker_ui_port),
                    "--work-dir", str(self.workdir / "work"))
        try:
            wait_for(lambda: self._alive_workers() >= 1, "the Spark worker to register with the master", 90)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        # the worker first: on SIGTERM it ends its executors and waits for them; then the master;
        # anything left in their process groups (spark-class execs the JVM) is killed
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        self.procs.clear()
