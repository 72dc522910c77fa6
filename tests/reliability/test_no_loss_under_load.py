"""No loss under load: a rule fed 1,000,000 events by the native random source, writing to a
deliberately slow sink, holds the source back (bounded rows in flight, bounded RSS) and
delivers exactly 1,000,000 rows; a stop drains what was taken in, or says how many rows it
left undelivered."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from package_helpers import subprocess_env
from plutino.engine import BUILTIN_NAMES, RuleManager
from plutino.engine.plugin_config import YamlConfigResolver
from plutino.native.loader import load_plugin
from plutino.registry import Registry

from .slow_sink import SlowSinkPlugin

HERE = Path(__file__).resolve().parent
N = 1_000_000
BATCH = 5_000
SLEEP_MS = 10
BUFFER = 4


def test_a_million_events_reach_a_slow_sink_exactly_once_with_bounded_memory(plugin_build):
    child = subprocess.run(
        [sys.executable, str(HERE / "load_child.py"), str(plugin_build), *map(str, (N, BATCH, SLEEP_MS, BUFFER))],
        env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    figures = json.loads(child.stdout)
    print("\nload figures:", json.dumps(figures))
    assert figures["status"] == "stopped: end of stream"
    assert figures["sink_rows"] == N
    assert figures["source_records_out"] == figures["sink_records_in"] == figures["sink_records_out"] == N
    assert figures["sink_batches"] == figures["sink_messages_out"] == N // BATCH  # a sink's records: messages
    assert figures["exceptions"] == 0
    # backpressure: never more rows between the source and the sink than the queues hold
    # (bufferLength batches before the operators and before the sink) plus one batch in the
    # hands of each of the three threads
    assert 0 < figures["in_flight_peak"] <= (2 * BUFFER + 3) * BATCH
    # and memory follows: the process grew by a fraction of what buffering every row would take
    grown = figures["rss_peak"] - figures["rss_before"]
    assert grown < figures["data_bytes"] / 4, figures
    # the sink set the pace: at least sleep_ms per batch
    assert figures["elapsed_s"] >= (N // BATCH) * SLEEP_MS / 1000


# ---------------------------------------------------------------- stopping mid-stream


@pytest.fixture
def engine(plugin_build: Path, tmp_path: Path) -> Iterator[tuple[RuleManager, SlowSinkPlugin]]:
    """An engine with the native random source (endless, 1000-row batches) and the slow sink."""
    (tmp_path / "random.yaml").write_text(json.dumps({"endless": {
        "interval": 0, "batch_size": 1000, "seed": 3, "pattern": {"count": 100, "name": "sensor"}}}))
    registry = Registry(BUILTIN_NAMES)
    registry.register(load_plugin(plugin_build / "sources" / "random.so", kind="source"))
    sink = SlowSinkPlugin()
    registry.register(sink)
    manager = RuleManager(registry, config_for=YamlConfigResolver({"source": [tmp_path]}))
    manager.create_stream('CREATE STREAM endless () WITH (TYPE="random", CONF_KEY="endless")')
    yield manager, sink
    manager.shutdown()


def _wait_rows(sink: SlowSinkPlugin, rows: int) -> None:
    deadline = time.monotonic() + 30
    while sink.rows < rows:
        assert time.monotonic() < deadline, f"the sink got {sink.rows} rows, waited for {rows}"
        time.sleep(0.01)


def _undelivered(status: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in status.items() if k.endswith("_records_undelivered_total")}


def test_a_stop_drains_the_rows_already_taken_in(engine):
    manager, sink = engine
    manager.create_rule({"id": "r", "sql": "SELECT count, name FROM endless",
                         "actions": [{"slow": {"sleep_ms": 5}}], "options": {"bufferLength": BUFFER}})
    _wait_rows(sink, 20_000)
    manager.stop_rule("r")
    status = manager.rule_status("r")
    assert status["status"] == "stopped: canceled manually"
    taken = status["source_endless_0_records_in_total"]
    assert taken >= 20_000
    assert sink.rows == taken == status["source_endless_0_records_out_total"]
    assert sink.rows == status["sink_slow_0_0_rows_out_total"]
    assert _undelivered(status) == {}


def test_a_stop_without_time_to_drain_reports_what_it_did_not_deliver(engine):
    manager, sink = engine
    manager.create_rule({"id": "r", "sql": "SELECT count, name FROM endless",
                         "actions": [{"slow": {"sleep_ms": 20}}],
                         "options": {"bufferLength": BUFFER, "drainTimeout": 0}})
    _wait_rows(sink, 5_000)
    manager.stop_rule("r")
    status = manager.rule_status("r")
    undelivered = _undelivered(status)
    assert set(undelivered) <= {"source_endless_0_records_undelivered_total", "sink_slow_0_0_records_undelivered_total"}
    assert sum(undelivered.values()) > 0
    # every row the source gave was either written or is counted as undelivered
    taken = status["source_endless_0_records_in_total"]
    assert taken == sink.rows + sum(undelivered.values())
    assert status["sink_slow_0_0_rows_out_total"] == sink.rows
