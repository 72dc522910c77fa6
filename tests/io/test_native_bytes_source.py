"""A native *bytes* source's ``payload`` column is decoded by FORMAT exactly as MQTT messages are."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from helpers import wait_for
from iohelpers import Mosquitto, MqttClient
from plutino.engine import RuleManager
from plutino.io.formats import decode, payload_column
from plutino.io.memory import MemoryBroker
from plutino.io.mqtt import MqttSourcePlugin
from plutino.native.loader import load_plugin
from plutino_contract import get_include
from plutino_contract.protocols import Context

HERE = Path(__file__).parent
SCHEMA = pa.schema([("id", pa.int64()), ("temperature", pa.float64())])


@pytest.fixture(scope="session")
def bytes_source(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """tests/io/plugins/bytes_source.c, compiled as plutino_add_plugin would, and loaded."""
    gcc = shutil.which("gcc")
    assert gcc, "gcc is needed to build the test's native source"
    out = tmp_path_factory.mktemp("native") / "bytes_source.so"
    proc = subprocess.run(
        [
            gcc,
            "-shared",
            "-fPIC",
            "-fvisibility=hidden",
            "-O1",
            "-Wall",
            "-Werror",
            f"-I{get_include()}",
            str(HERE / "plugins" / "bytes_source.c"),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return load_plugin(out, kind="source")


def native_payloads(plugin: Any) -> pa.Array:
    source = plugin.create({}, Context(plugin_name="bytes_source"))
    source.open()
    try:
        batch = source.next(1.0)
    finally:
        source.close()
    column = payload_column(batch)
    assert column is not None, f"not a bytes batch: {batch.schema}"
    return column


@pytest.mark.parametrize("schema", [None, SCHEMA], ids=["schemaless", "declared"])
def test_native_payloads_decode_to_the_same_rows_as_the_same_mqtt_messages(
    bytes_source: Any, mosquitto: Mosquitto, mqtt_client: MqttClient, topic: str, schema: pa.Schema | None
):
    from_native = native_payloads(bytes_source)
    source = MqttSourcePlugin().create({"server": mosquitto.url, "datasource": topic}, Context(plugin_name="mqtt"))
    source.open()
    try:
        wait_for(lambda: source.status() == "connected", "the mqtt source to subscribe")
        mqtt_client.publish(topic, from_native.to_pylist())
        wait_for(lambda: source.received == len(from_native), "the messages")
        from_mqtt = payload_column(source.next(1.0))
    finally:
        source.close()
    assert from_mqtt.to_pylist() == from_native.to_pylist()
    native_rows = decode(from_native, "json", schema)
    assert native_rows.equals(decode(from_mqtt, "json", schema))
    if schema is None:
        assert native_rows.to_pylist()[2] == {"id": 3, "temperature": 25.0, "extra": "ignored by a declared schema"}
    else:
        assert native_rows.schema == schema


def test_a_rule_reads_a_native_bytes_source_through_the_stream_format(
    bytes_source: Any, registry: Any, memory_broker: MemoryBroker
):
    registry.register(bytes_source)
    manager = RuleManager(registry)
    out = memory_broker.subscribe("native_out")
    try:
        manager.create_stream(
            'CREATE STREAM native (id BIGINT, temperature FLOAT) WITH (TYPE="bytes_source", FORMAT="json")'
        )
        manager.create_rule(
            {
                "id": "native_bytes",
                "sql": "SELECT id FROM native WHERE temperature > 20",
                "actions": [{"memory": {"topic": "native_out"}}],
            }
        )
        rows: list[dict[str, Any]] = []

        def collected() -> bool:
            batch = out.get(0.05)
            if batch is not None:
                rows.extend(batch.to_pylist())
            return len(rows) >= 3

        wait_for(collected, "the rule's rows")
        assert rows == [{"id": 1}, {"id": 3}, {"id": 4}]
        wait_for(
            lambda: manager.rule_status("native_bytes")["status"] == "stopped: end of stream",
            "the bounded stream to end the rule",
        )
    finally:
        manager.shutdown()
