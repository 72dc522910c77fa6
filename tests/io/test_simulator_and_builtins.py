"""The simulator source, the nop sink, and how the built-ins enter a registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from helpers import wait_for
from plutino.engine import BUILTIN_NAMES, RuleManager
from plutino.engine.plugin_config import YamlConfigResolver
from plutino.errors import RegistryError
from plutino.io.builtin import builtin_io_plugins, builtin_plugin, is_builtin, register_builtins
from plutino.io.memory import MemoryBroker
from plutino.io.nop import NopSinkPlugin
from plutino.io.simulator import SimulatorSourcePlugin
from plutino.registry import Registry
from plutino_contract.protocols import Context, EndOfStream, SinkPlugin, SourcePlugin

CTX = Context(plugin_name="simulator")
DATA = [{"t": 20.5, "h": 40}, {"t": 21, "h": 41}, {"t": 22.5, "h": None}]


def test_simulator_gives_the_rows_in_batches_and_ends_unless_it_loops():
    source = SimulatorSourcePlugin().create({"data": DATA, "interval": 0, "loop": False, "batchSize": 2}, CTX)
    source.open()
    assert source.schema() == pa.schema([("t", pa.float64()), ("h", pa.int64())])  # from all rows at once
    assert source.next(1).to_pylist() == [{"t": 20.5, "h": 40}, {"t": 21.0, "h": 41}]
    assert source.next(1).to_pylist() == [{"t": 22.5, "h": None}]
    with pytest.raises(EndOfStream):
        source.next(1)


def test_simulator_loops_at_its_interval():
    source = SimulatorSourcePlugin().create({"data": DATA[:2], "interval": "10"}, CTX)
    source.open()
    got: list[Any] = []

    def four() -> bool:
        batch = source.next(0.05)
        if batch is not None:
            got.extend(r["h"] for r in batch.to_pylist())
        return len(got) >= 4

    wait_for(four, "four rows")
    source.close()
    assert got[:4] == [40, 41, 40, 41]


@pytest.mark.parametrize(
    "config, message",
    [
        (
            {},
            'simulator source: no rows; give "data" a list of rows, e.g. data: [{"temperature": 21.5}, '
            '{"temperature": 22.0}] in simulator.yaml',
        ),
        ({"data": [{"a": 1}, 5]}, "simulator source: data[1] is 5, not an object of column values"),
        ({"data": [{"a": 1}, {"a": "x"}]}, "simulator source: the values of 'a' do not fit one type: "),
        (
            {"data": [{"a": 1}], "loop": "sometimes"},
            "simulator source: property 'loop' must be true or false, got 'sometimes'",
        ),
    ],
)
def test_simulator_configuration_mistakes_are_named(config: dict[str, Any], message: str):
    with pytest.raises(ValueError) as err:
        SimulatorSourcePlugin().create(config, CTX)
    assert str(err.value).startswith(message)


def test_a_rule_over_the_simulator_configured_in_its_yaml_ends_into_nop(tmp_path: Path, registry: Any):
    (tmp_path / "simulator.yaml").write_text(
        "default:\n  interval: 0\n  loop: false\n  data:\n    - {t: 20.5}\n    - {t: 30.0}\n"
    )
    manager = RuleManager(registry, config_for=YamlConfigResolver({"source": [tmp_path], "sink": []}))
    try:
        manager.create_stream('CREATE STREAM sim () WITH (TYPE="simulator")')
        manager.create_rule({"id": "sim", "sql": "SELECT t FROM sim WHERE t > 25", "actions": [{"nop": {}}]})
        wait_for(lambda: manager.rule_status("sim")["status"] == "stopped: end of stream", "the rule to end")
        status = manager.rule_status("sim")
        assert status["source_sim_0_records_in_total"] == 2
        assert status["sink_nop_0_0_rows_in_total"] == 1
    finally:
        manager.shutdown()


def test_nop_sink_counts_and_drops():
    sink = NopSinkPlugin().create({"log": True}, Context(plugin_name="nop"))
    sink.write(pa.RecordBatch.from_pylist([{"a": 1}, {"a": 2}]))
    assert (sink.rows, sink.batches, sink.status()) == (2, 1, "connected")


def test_every_builtin_satisfies_the_protocols_and_registers():
    plugins = builtin_io_plugins(MemoryBroker())
    assert sorted((p.kind, p.name) for p in plugins) == [
        ("sink", "file"),
        ("sink", "log"),
        ("sink", "memory"),
        ("sink", "mqtt"),
        ("sink", "nop"),
        ("sink", "rest"),
        ("source", "file"),
        ("source", "httppull"),
        ("source", "httppush"),
        ("source", "memory"),
        ("source", "mqtt"),
        ("source", "simulator"),
    ]
    for p in plugins:
        assert isinstance(p, SourcePlugin if p.kind == "source" else SinkPlugin)
        assert is_builtin(p)
    registry = Registry(BUILTIN_NAMES)
    assert register_builtins(registry) == []
    assert register_builtins(registry) == []  # again: nothing new, nothing refused
    assert builtin_plugin("sink", "rest").name == "rest" and builtin_plugin("sink", "nope") is None


def test_an_installed_plugin_holding_a_builtin_name_wins(plugin_build: Path):
    from plutino.native.loader import load_plugin

    native_file = load_plugin(plugin_build / "sinks" / "file.so", kind="sink")
    assert not is_builtin(native_file)
    registry = Registry(BUILTIN_NAMES)
    registry.register(native_file)  # loaded from the store before the built-ins are registered
    assert register_builtins(registry) == ["sink/file"]
    assert registry.get("sink", "file") is native_file
    # the other order: the registry refuses, naming the built-in that holds the name
    registry = Registry(BUILTIN_NAMES)
    register_builtins(registry)
    with pytest.raises(RegistryError) as err:
        registry.register(native_file)
    assert (
        "a sink plugin named 'file' is already registered, plugin 'file' (Python plutino.io.file."
        "FileSinkPlugin)" in str(err.value)
    )
