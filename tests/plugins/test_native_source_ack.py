"""At-least-once for native sources (ack, since ABI 1.1): a source is told, batch by batch, when
every rule is done with a batch, and never for rows a stop keeps from their sinks.

Real builds, real engine: the counter source of the broken corpus
(native_plugins/broken/good_source.c) appends each acknowledged batch number to a file; the
same source built against the 1.0 header (no ack slot) runs at-most-once in this 1.1 host.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import plutino_contract as contract
from helpers import wait_for
from plutino.engine import BUILTIN_NAMES, RuleManager
from plutino.io.builtin import register_builtins
from plutino.io.memory import MemoryBroker
from plutino.native.loader import load_plugin
from plutino.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 10.0


class Configured:
    """A source plugin registered under another name, with a fixed config (the test's knobs)."""

    kind = "source"

    def __init__(self, plugin: Any, name: str, config: dict[str, Any]) -> None:
        self.plugin, self.name, self.version, self.config = plugin, name, plugin.version, config

    def create(self, config: Any, context: Any) -> Any:
        return self.plugin.create({**(config or {}), **self.config}, context)


def rows_of(sub: Any, count: int) -> list[int]:
    """The n values of the first ``count`` rows published to the subscription."""
    rows: list[int] = []
    deadline = time.monotonic() + WAIT_S
    while len(rows) < count and time.monotonic() < deadline:
        batch = sub.get(0.05)
        if batch is not None:
            rows += batch.column("n").to_pylist()
    return sorted(rows)


def acked(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


@pytest.fixture(scope="module")
def counter(plugin_build: Path) -> Any:
    return load_plugin(plugin_build / "broken" / "good_source.so", kind="source")


@pytest.fixture(scope="module")
def counter_1_0(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """good_source.c built against plutino.h as ABI 1.0 had it (no ack slot)."""
    include = tmp_path_factory.mktemp("include-1.0")
    (include / "plutino").mkdir()
    for header in Path(contract.get_include(), "plutino").iterdir():
        text = header.read_text()
        if header.name == "plutino.h":
            start = text.index("  /* Optional (NULL: the host acknowledges nothing")
            end = text.index("int64_t seq);\n", start) + len("int64_t seq);\n")
            text = (text[:start] + text[end:]).replace("#define PLUTINO_ABI_MINOR 1", "#define PLUTINO_ABI_MINOR 0")
        (include / "plutino" / header.name).write_text(text)
    out = include / "good_source_1_0.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-fvisibility=hidden", "-O1", f"-I{include}",
                    f"-I{ROOT / 'native_plugins' / 'broken'}",
                    str(ROOT / "native_plugins" / "broken" / "good_source.c"),
                    "-o", str(out)], check=True, capture_output=True, text=True)
    return load_plugin(out, kind="source")


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


def manager_with(broker: MemoryBroker, *plugins: Any) -> RuleManager:
    registry = Registry(BUILTIN_NAMES)
    register_builtins(registry, broker)
    for plugin in plugins:
        registry.register(plugin)
    return RuleManager(registry)


@pytest.fixture
def run(broker: MemoryBroker) -> Iterator[Any]:
    managers: list[RuleManager] = []

    def start(source: Any, sql: str, actions: list[dict[str, Any]]) -> RuleManager:
        m = manager_with(broker, source)
        managers.append(m)
        m.create_stream(f'CREATE STREAM c (n BIGINT, label STRING) WITH (TYPE="{source.name}")')
        m.create_rule({"id": "r", "sql": sql, "actions": actions})
        return m

    yield start
    for m in managers:
        m.shutdown()


def test_every_batch_is_acknowledged_once_after_its_rows_reach_the_sink(counter, run, broker, tmp_path) -> None:
    log = tmp_path / "acks"
    source = Configured(counter, "counter", {"batch": 4, "batches": 6, "ack_log": str(log)})
    sub = broker.subscribe("out")
    run(source, "SELECT n FROM c WHERE n % 8 < 4", [{"memory": {"topic": "out", "sendSingle": False}}])
    # batches 2, 4, 6 hold only rows the WHERE drops: acknowledged too; the others reached the sink
    assert rows_of(sub, 12) == [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19]
    assert wait_for(lambda: sorted(acked(log)) == [1, 2, 3, 4, 5, 6], "six acknowledgements")
    time.sleep(0.2)
    assert sorted(acked(log)) == [1, 2, 3, 4, 5, 6]  # once each


def test_rows_a_stop_keeps_from_their_sink_are_not_acknowledged(counter, run, tmp_path) -> None:
    log = tmp_path / "acks"
    source = Configured(counter, "counter", {"batch": 2, "batches": 5, "ack_log": str(log)})
    # a sink that never succeeds: a REST endpoint on a closed port, retried until the stop
    m = run(source, "SELECT n FROM c", [{"rest": {"url": "http://127.0.0.1:9/x", "retryCount": 10000,
                                                   "retryInterval": 20}}])
    wait_for(lambda: m.rule_status("r").get("source_c_0_records_out_total", 0) >= 10, "the source read")
    time.sleep(0.3)
    m.stop_rule("r")
    assert acked(log) == []


def test_a_1_0_source_runs_at_most_once_in_this_host(counter_1_0, run, broker, tmp_path) -> None:
    assert counter_1_0.abi == (1, 0)
    source = Configured(counter_1_0, "counter10", {"batch": 3, "batches": 2, "ack_log": str(tmp_path / "acks")})
    instance = source.create({}, None)
    try:
        assert not hasattr(instance, "take_ack")  # its widened struct has ack = NULL
    finally:
        instance.close()
    sub = broker.subscribe("out")
    run(source, "SELECT n FROM c", [{"memory": {"topic": "out", "sendSingle": False}}])
    assert rows_of(sub, 6) == [0, 1, 2, 3, 4, 5]
    assert not (tmp_path / "acks").exists()


def test_a_resend_cache_keeps_the_acknowledgement_until_the_batch_goes_through(
        counter, plugin_build, broker, tmp_path) -> None:
    log, out = tmp_path / "acks", tmp_path / "written"
    recording = load_plugin(plugin_build / "broken" / "recording_sink.so", kind="sink")
    m = manager_with(broker, Configured(counter, "counter", {"batch": 2, "batches": 3, "ack_log": str(log)}),
                     recording)
    try:
        m.create_stream('CREATE STREAM c (n BIGINT, label STRING) WITH (TYPE="counter")')
        # the first 4 writes fail with PLUTINO_IO: each batch waits in the resend cache
        m.create_rule({"id": "r", "sql": "SELECT n FROM c", "actions": [
            {"recording_sink": {"path": str(out), "fail_writes": 4, "resendInterval": 30}}]})
        wait_for(lambda: out.exists() and len(out.read_text().splitlines()) == 3, "the three batches written")
        assert wait_for(lambda: sorted(acked(log)) == [1, 2, 3], "three acknowledgements")
    finally:
        m.shutdown()


def test_a_batch_still_in_the_resend_cache_at_the_stop_is_not_acknowledged(counter, run, tmp_path) -> None:
    log = tmp_path / "acks"
    source = Configured(counter, "counter", {"batch": 2, "batches": 3, "ack_log": str(log)})
    m = run(source, "SELECT n FROM c", [{"rest": {"url": "http://127.0.0.1:9/x", "resendInterval": 20}}])
    wait_for(lambda: m.rule_status("r").get("source_c_0_records_out_total", 0) >= 6, "the source read")
    time.sleep(0.3)
    m.stop_rule("r")
    assert acked(log) == []  # cached in memory only: the source replays them
