"""The rule bench/pipeline.py measures, and the case that runs it in a worker process.

What the in-process cases (pipeline.py's ``Bench``) and the worker case share: the stream, the
rule's SQL, the random source's configuration, and how a run's end is read from the count
sink's file. ``WorkerBench`` runs the rule as the server does, on a worker of a ``Host``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

PATTERN = {"temperature": 100.0, "humidity": 100.0}
STREAM = 'CREATE STREAM demo (temperature FLOAT, humidity FLOAT) WITH (TYPE="random")'
SQL = "SELECT humidity, {fn}(temperature) AS t2 FROM demo WHERE temperature > 50"


def source_config(batch: int, rows: int) -> dict[str, Any]:
    return {"interval": 0, "batch_size": batch, "count": rows, "pattern": PATTERN, "seed": 1}


class WorkerBench:
    """The "engine" rule through a Host: the control plane here, the rule on a worker process."""

    def __init__(self, plugins: Path, count_so: Path, cpus: set[int] | None) -> None:
        import _dataplane

        self.dp = _dataplane.TempHost(workers=1, spare_workers=1)
        self.dp.install("source", plugins / "sources" / "random.so", source_config(1024, 1024))
        self.dp.install("function", plugins / "functions" / "fastmath.so", functions=["mul2add1", "upperAscii"])
        self.dp.install("sink", count_so)
        self.dp.host.engine.create_stream(STREAM)
        self.cpus = cpus
        self.pinned: int | None = None
        self.runs = 0
        self.worker_cpu_s = 0.0  # CPU time the worker process spent in the timed runs, in all
        self.control_cpu_s = 0.0  # and this process (the control plane) meanwhile
        # The first rule starts the pool worker, and the spare behind it, whose start-up
        # (interpreter, imports, plugins: a CPU-second here) must not overlap the measured runs.
        self.engine(1024, 1024 * 64)
        self.dp.wait_spares()

    def engine(self, batch: int, rows: int) -> tuple[float, int]:
        """As :meth:`Bench.engine`, in the worker: the rule from the start request until the
        sink has written the last row of the bounded source."""
        import _dataplane

        self.runs += 1
        rule_id = f"wbench{self.runs}"
        out = self.dp.tmp / f"{rule_id}.txt"
        self.dp.source_config("random", source_config(batch, rows))
        host = self.dp.host
        host.create_rule({"id": rule_id, "sql": SQL.format(fn="mul2add1"), "triggered": False,
                          "actions": [{"count": {"path": str(out)}}]})
        try:
            out.unlink(missing_ok=True)  # written when the rule was checked (its instances made and closed)
            pid = self.dp.worker_pid(rule_id)
            if pid is None:
                sys.exit(f"rule {rule_id} was given no worker")
            if self.cpus is not None and pid != self.pinned:  # the first run, or a new worker
                _dataplane.pin_process(pid, self.cpus)
                self.pinned = pid
            cpu0, ctl0 = process_cpu_s(pid), time.process_time()
            started = time.time()
            host.start_rule(rule_id)
            while sink_rows(out, timeout_s=0.25, poll_s=0.01) is None:  # the sink writes its file at the end
                if host.rule_status(rule_id)["status"] != "running":  # (or the rule failed)
                    break
            while True:  # then the rule's own stop time, set once its instances are closed
                status = host.rule_status(rule_id)
                if status["status"] != "running" and status.get("lastStopTimestamp"):
                    break
                time.sleep(0.002)
            self.worker_cpu_s += process_cpu_s(pid) - cpu0
            self.control_cpu_s += time.process_time() - ctl0
            if status["status"] != "stopped: end of stream":
                sys.exit(f"rule {rule_id} stopped early in its worker: {status['status']}")
            elapsed = max(status["lastStopTimestamp"] / 1000 - started, 1e-3)
        finally:
            host.delete_rule(rule_id)
        written = _dataplane.counter(status, "sink_count_", "_rows_out_total")
        told = sink_rows(out)
        if told != written:
            sys.exit(f"rule {rule_id}: the count sink saw {told} rows but the worker's engine says it wrote {written}")
        return elapsed, written

    def close(self) -> None:
        self.dp.close()


_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` so far, its ended threads included, in
    seconds; /proc counts it in clock ticks (10 ms), so sum many runs before comparing."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_S


def sink_rows(path: Path, timeout_s: float = 10.0, poll_s: float = 0.001) -> int | None:
    """The rows the count sink wrote into ``path`` when it was closed (the rule's stop closes it
    on a thread of its own, so the file may come a moment after the rule says it stopped)."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = path.read_text() if path.exists() else ""
        if text.endswith("\n"):
            return int(dict(kv.split("=") for kv in text.split())["rows"])
        if time.monotonic() > deadline:
            return None
        time.sleep(poll_s)
