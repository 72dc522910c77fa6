"""eKuiper's common sink properties reach native sinks exactly as they reach built-in ones, and
the engine keeps the sink API's promises: PLUTINO_IO is resent after resendInterval, flush()
is called periodically and at the stop.

Real builds, real engine: the recording sink of the broken corpus
(native_plugins/broken/recording_sink.c, one line per batch it is handed) and the bundled
native file sink, in rules run by a RuleManager beside the built-in memory and file sinks.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pytest

from helpers import wait_for
from plutino.engine import BUILTIN_NAMES, RuleError, RuleManager
from plutino.io.builtin import register_builtins
from plutino.io.memory import MemoryBroker
from plutino.native.loader import load_plugin
from plutino.registry import Registry

WAIT_S = 10.0
ROWS = [
    [{"a": 1, "b": "x", "c": True}, {"a": 2, "b": "y", "c": None}],
    [{"a": 3, "b": "z \"q\"", "c": False}],
]
SCHEMA = pa.schema([("a", pa.int64()), ("b", pa.string()), ("c", pa.bool_())])


class Renamed:
    """A sink plugin registered under another name (the native file sink beside the built-in one)."""

    kind = "sink"

    def __init__(self, plugin: Any, name: str) -> None:
        self.plugin, self.name, self.version = plugin, name, plugin.version

    def create(self, config: Any, context: Any) -> Any:
        return self.plugin.create(config, context)


@pytest.fixture(scope="module")
def recording(plugin_build: Path) -> Any:
    return load_plugin(plugin_build / "broken" / "recording_sink.so", kind="sink")


@pytest.fixture(scope="module")
def native_file(plugin_build: Path) -> Any:
    return load_plugin(plugin_build / "sinks" / "file.so", kind="sink")


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def manager(broker: MemoryBroker, recording: Any, native_file: Any) -> Iterator[RuleManager]:
    registry = Registry(BUILTIN_NAMES)
    register_builtins(registry, broker)
    registry.register(recording)
    registry.register(Renamed(native_file, "native_file"))
    m = RuleManager(registry)
    m.create_stream('CREATE STREAM s (a BIGINT, b STRING, c BOOLEAN) WITH (TYPE="memory", DATASOURCE="in_s")')
    yield m
    m.shutdown()


def run(manager: RuleManager, broker: MemoryBroker, actions: list[dict[str, Any]], sql: str = "SELECT * FROM s",
        batches: list[list[dict[str, Any]]] = ROWS) -> Any:
    """Start rule r1 with ``actions``, feed ``batches`` one by one, wait until the sinks wrote them."""
    manager.create_rule({"id": "r1", "sql": sql, "actions": actions})
    runtime = manager.runtime("r1")
    for rows in batches:
        want = runtime.source_metrics.records_out + len(rows)
        broker.publish("in_s", pa.RecordBatch.from_pylist(rows, schema=SCHEMA))
        wait_for(lambda want=want: runtime.source_metrics.records_out >= want, "the rule to take a batch in")
    assert runtime.wait_idle(WAIT_S)
    return runtime


def recorded(path: Path) -> list[list[dict[str, Any]]]:
    """The recording sink's batches (one JSON array per line)."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def memory_batches(sub: Any) -> list[list[dict[str, Any]]]:
    out = []
    while (batch := sub.get(timeout=0)) is not None:
        out.append([{k: v.decode() if isinstance(v, bytes) else v for k, v in row.items()}
                    for row in batch.to_pylist()])
    return out


@pytest.mark.parametrize("props", [
    {},
    {"fields": ["c", "a", "missing"]},
    {"sendSingle": True},
    {"fields": ["b"], "sendSingle": True},
    {"dataTemplate": '{"A": {{.a}}, "B": "{{.b}}"}', "sendSingle": True},
    {"dataTemplate": "{{range .}}{{.a}};{{end}}"},
], ids=["none", "fields", "sendSingle", "fields+sendSingle", "template-per-row", "template-per-batch"])
def test_a_native_sink_is_handed_what_the_memory_sink_is_handed(manager, broker, tmp_path: Path, props):
    out = tmp_path / "rec.jsonl"
    sub = broker.subscribe("out")
    run(manager, broker, [{"memory": {"topic": "out", **props}}, {"recording_sink": {"path": str(out), **props}}])
    expected = memory_batches(sub)
    assert expected, "the memory sink got nothing"
    assert recorded(out) == expected
    if props.get("sendSingle"):
        assert all(len(batch) == 1 for batch in expected) and len(expected) == 3


def test_the_native_file_sink_with_fields_writes_what_the_builtin_file_sink_writes(manager, broker, tmp_path: Path):
    builtin, native = tmp_path / "builtin.jsonl", tmp_path / "native.jsonl"
    props = {"fields": ["c", "a"], "sendSingle": True}
    runtime = run(manager, broker, [{"file": {"path": str(builtin), **props}},
                                    {"native_file": {"path": str(native), **props}}])
    manager.stop_rule("r1")
    lines = [json.loads(line) for line in native.read_text().splitlines()]
    assert lines == [json.loads(line) for line in builtin.read_text().splitlines()]
    assert lines == [{"c": True, "a": 1}, {"c": None, "a": 2}, {"c": False, "a": 3}]
    assert runtime.sink_metrics[1].records_out == 3


def test_the_plugin_gets_its_own_properties_and_format_never_the_common_ones(manager, broker, tmp_path: Path):
    seen = tmp_path / "config.json"
    run(manager, broker, [{"recording_sink": {
        "path": str(tmp_path / "rec.jsonl"), "config_path": str(seen), "fields": ["a"], "sendSingle": True,
        "dataTemplate": "{{.a}}", "resendInterval": 10, "memoryCacheThreshold": 5, "format": "json",
        "retryCount": 1, "retryInterval": 5, "bufferLength": 4, "flushInterval": 100, "omitIfEmpty": True,
    }}], batches=[])
    assert json.loads(seen.read_text()) == {"path": str(tmp_path / "rec.jsonl"), "config_path": str(seen),
                                            "format": "json"}


def test_a_bad_common_property_of_a_native_sink_is_refused_when_the_rule_is_created(manager):
    with pytest.raises(RuleError) as err:
        manager.create_rule({"id": "r1", "sql": "SELECT * FROM s",
                             "actions": [{"recording_sink": {"path": "x", "sendSingle": "yes"}}]})
    message = str(err.value)
    assert "rule 'r1': sink 'recording_sink' (action 0) refused its configuration" in message
    assert "sendSingle" in message


def test_plutino_io_is_resent_after_resend_interval_and_the_rows_arrive_once(manager, broker, tmp_path: Path):
    out = tmp_path / "rec.jsonl"
    started = time.monotonic()
    runtime = run(manager, broker, [{"recording_sink": {"path": str(out), "fail_writes": 3, "resendInterval": 20}}],
                  batches=ROWS[:1])
    (writer,) = runtime._writers
    wait_for(lambda: writer.sink.resent == 1, "the resent batch")
    assert time.monotonic() - started >= 3 * 0.020  # three failures, the last two resent an interval apart
    assert recorded(out) == ROWS[:1] and writer.sink.dropped == 0
    assert writer.sink._call_later == manager.scheduler.call_later  # it waited on the scheduler, not a thread
    broker.publish("in_s", pa.RecordBatch.from_pylist(ROWS[1], schema=SCHEMA))
    assert wait_for(lambda: len(recorded(out)) == 2 and recorded(out), "the second batch") == ROWS  # once each
    assert runtime.sink_metrics[0].exceptions == 0  # a resent failure is not an error of the rule


def test_plutino_io_without_resend_interval_is_retried_retry_count_times(manager, broker, tmp_path: Path):
    out = tmp_path / "rec.jsonl"
    runtime = run(manager, broker, [{"recording_sink": {"path": str(out), "fail_writes": 2, "retryCount": 3,
                                                        "retryInterval": 5}}])
    assert recorded(out) == ROWS
    assert runtime.sink_metrics[0].extra["retries_total"] == 2


def test_a_buffering_native_sink_is_flushed_periodically_while_the_rule_runs(manager, broker, tmp_path: Path):
    out = tmp_path / "rec.jsonl"
    run(manager, broker, [{"recording_sink": {"path": str(out), "buffered": True, "flushInterval": 20}}])
    assert wait_for(lambda: recorded(out) == ROWS, "the periodic flush")
    assert manager.rule_status("r1")["status"] == "running"


def test_without_periodic_flushes_a_buffering_native_sink_is_flushed_at_the_stop(manager, broker, tmp_path: Path):
    out = tmp_path / "rec.jsonl"
    run(manager, broker, [{"recording_sink": {"path": str(out), "buffered": True, "flushInterval": 0}}])
    time.sleep(0.05)
    assert recorded(out) == []  # held by the plugin: no flush yet
    manager.stop_rule("r1")
    assert recorded(out) == ROWS  # the stop flushed before closing (close() itself drops them)


def test_a_failed_flush_is_counted_and_tried_again_an_interval_later(manager, broker, tmp_path: Path):
    out = tmp_path / "later" / "rec.jsonl"  # its folder does not exist yet: flush() fails with PLUTINO_IO
    runtime = run(manager, broker, [{"recording_sink": {"path": str(out), "buffered": True, "flushInterval": 10}}])
    wait_for(lambda: runtime.sink_metrics[0].exceptions >= 1, "a failed flush")
    assert "sink flush failed (PLUTINO_IO)" in manager.rule_status("r1")["sink_recording_sink_0_0_last_exception"]
    out.parent.mkdir()
    assert wait_for(lambda: recorded(out) == ROWS, "the flush that goes through")
