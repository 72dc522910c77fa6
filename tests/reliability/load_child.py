"""Run by test_no_loss_under_load.py in a child process of its own, so that the RSS measured is
that of the rule alone: one rule reads N events from the native ``random`` source (``count``
= N, large batches, no interval) and writes them to a slow Python sink. Prints one JSON object
with what was delivered and what memory the process used, sampled every few milliseconds.

    python load_child.py PLUGIN_BUILD N BATCH SLEEP_MS BUFFER_LENGTH
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path

from plutino.engine import BUILTIN_NAMES, RuleManager
from plutino.engine.plugin_config import YamlConfigResolver
from plutino.native.loader import load_plugin
from plutino.registry import Registry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slow_sink import SlowSinkPlugin  # noqa: E402


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    build, n, batch, sleep_ms, buffer_length = Path(sys.argv[1]), *map(int, sys.argv[2:6])
    etc = Path(tempfile.mkdtemp(prefix="plutino-load-"))
    (etc / "random.yaml").write_text(json.dumps({"load": {
        "interval": 0, "batch_size": batch, "count": n, "seed": 7,
        "pattern": {"count": 1000, "temperature": 30.0, "name": "sensor-" + "x" * 120}}}))
    registry = Registry(BUILTIN_NAMES)
    registry.register(load_plugin(build / "sources" / "random.so", kind="source"))
    sink = SlowSinkPlugin()
    registry.register(sink)
    engine = RuleManager(registry, config_for=YamlConfigResolver({"source": [etc]}))
    engine.create_stream('CREATE STREAM load () WITH (TYPE="random", CONF_KEY="load")')

    samples = {"rss_peak": 0, "in_flight_peak": 0, "samples": 0}
    done = threading.Event()
    rss_before = rss_bytes()

    def sample() -> None:
        while not done.is_set():
            runtime = engine.runtime("load")
            in_flight = runtime.source_metrics.records_out - sink.rows
            samples["rss_peak"] = max(samples["rss_peak"], rss_bytes())
            samples["in_flight_peak"] = max(samples["in_flight_peak"], in_flight)
            samples["samples"] += 1
            time.sleep(0.005)

    started = time.perf_counter()
    engine.create_rule({"id": "load", "sql": "SELECT count, temperature, name FROM load",
                        "actions": [{"slow": {"sleep_ms": sleep_ms}}], "options": {"bufferLength": buffer_length}})
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    deadline = time.monotonic() + 120
    while engine.rule_status("load")["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    status = engine.rule_status("load")
    engine.shutdown()
    print(json.dumps({
        "n": n, "batch": batch, "sleep_ms": sleep_ms, "buffer_length": buffer_length,
        "status": status["status"], "elapsed_s": elapsed,
        "sink_rows": sink.rows, "sink_batches": sink.batches,
        "source_records_out": status["source_load_0_records_out_total"],
        "sink_records_in": status["sink_slow_0_0_rows_in_total"],
        "sink_records_out": status["sink_slow_0_0_rows_out_total"],
        "sink_messages_out": status["sink_slow_0_0_records_out_total"],
        "exceptions": sum(v for k, v in status.items() if k.endswith("_exceptions_total")),
        "rss_before": rss_before, "rss_peak": samples["rss_peak"],
        "data_bytes": sink.data_bytes,
        "in_flight_peak": samples["in_flight_peak"], "samples": samples["samples"],
    }))


if __name__ == "__main__":
    main()
