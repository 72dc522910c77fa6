"""The mqtt source and sink against a real mosquitto on a loopback port."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pytest

from helpers import wait_for
from iohelpers import Mosquitto, MqttClient
from plutino.engine import RuleManager
from plutino.engine.plugin_config import YamlConfigResolver
from plutino.io.formats import decode
from plutino.io.mqtt import MqttSinkPlugin, MqttSource, MqttSourcePlugin
from plutino_contract.protocols import Context

CTX = Context(plugin_name="mqtt", rule_id="r", op_id="source")


def drain(source: MqttSource, count: int, ids: range | None = None) -> list[bytes]:
    """Take batches from the source until ``count`` payloads came, or (with ``ids``) until
    every id in ``ids`` came: at qos 1 a redelivery may repeat a message (bounded wait)."""
    got: list[bytes] = []

    def more() -> bool:
        batch = source.next(0.05)
        if batch is not None:
            assert batch.schema.names == ["payload"]
            got.extend(batch.column(0).to_pylist())
        if ids is not None:
            return set(ids) <= {json.loads(p)["id"] for p in got}
        return len(got) >= count

    wait_for(more, f"{count} messages from the mqtt source (got {len(got)})")
    return got


def messages(ids: range) -> list[bytes]:
    return [json.dumps({"id": i, "temperature": i * 2.0}).encode() for i in ids]


def test_source_hands_out_every_pending_message_as_one_batch_of_payloads(
    mosquitto: Mosquitto, mqtt_client: MqttClient, topic: str
):
    source = MqttSourcePlugin().create({"server": mosquitto.url, "datasource": topic, "qos": 1, "format": "json"}, CTX)
    assert source.schema() == pa.schema([("payload", pa.binary())])
    source.open()
    try:
        wait_for(lambda: source.status() == "connected", "the source to subscribe")
        mqtt_client.publish(topic, messages(range(50)))
        wait_for(lambda: source.received == 50, "the broker to deliver 50 messages")
        batch = source.next(1)
        assert batch is not None and batch.num_rows == 50  # everything pending, in one batch
        assert source.next(0.01) is None
        rows = decode(batch.column(0), "json").to_pylist()
        assert rows == [{"id": i, "temperature": i * 2.0} for i in range(50)]
    finally:
        source.close()
    assert source.status() == "disconnected"


@pytest.mark.parametrize("version", ["3.1.1", "5"])
def test_source_takes_bursts_whole_and_in_order_whatever_the_packet_sizes(
    mosquitto: Mosquitto, mqtt_client: MqttClient, topic: str, version: str
):
    source = MqttSourcePlugin().create(
        {"server": mosquitto.url, "datasource": topic, "qos": 1, "protocolVersion": version}, CTX
    )
    source.open()
    try:
        wait_for(lambda: source.status() == "connected", "the source to subscribe")
        assert type(source._client).__name__ == "_FastClient"  # the bulk path is in use with this paho
        # lengths of 1 to 3 bytes, and packets longer than one socket read (_RECV_BYTES)
        sizes = [10, 200, 20_000, 10, 300_000]
        payloads = [b"%04d:" % i + b"x" * sizes[i % len(sizes)] for i in range(300)]
        for qos, part in ((1, payloads[:150]), (0, payloads[150:])):  # QoS 1 ones acknowledged by the source
            mqtt_client.publish(topic, part, qos=qos)
            assert drain(source, len(part)) == part
        assert source.next(0.05) is None
    finally:
        source.close()


@pytest.fixture
def fastmath(plugin_build: Path) -> Any:
    from plutino.native.loader import load_plugin

    return load_plugin(plugin_build / "functions" / "fastmath.so", kind="function")


def test_rule_reads_json_from_mqtt_filters_calls_a_native_function_and_publishes_to_another_topic(
    mosquitto: Mosquitto, mqtt_client: MqttClient, topic: str, registry: Any, fastmath: Any, tmp_path: Path
):
    registry.register(fastmath)
    etc = tmp_path / "etc"
    (etc / "sources").mkdir(parents=True)
    (etc / "sources" / "mqtt.yaml").write_text(f"default:\n  server: {mosquitto.url}\n  qos: 1\n")
    manager = RuleManager(
        registry, config_for=YamlConfigResolver({"source": [etc / "sources"], "sink": [etc / "sinks"]})
    )
    out_topic = f"{topic}/out"
    mqtt_client.subscribe(out_topic)
    try:
        manager.create_stream(
            f'CREATE STREAM readings (id BIGINT, temperature FLOAT) WITH (DATASOURCE="{topic}/in", FORMAT="json")'
        )  # TYPE: mqtt, the default
        manager.create_rule(
            {
                "id": "mqtt_to_mqtt",
                "sql": "SELECT id, mul2add1(temperature) AS t FROM readings WHERE temperature > 20",
                "actions": [{"mqtt": {"server": mosquitto.url, "topic": out_topic, "qos": 1, "sendSingle": True}}],
            }
        )

        def status() -> dict[str, Any]:
            return manager.rule_status("mqtt_to_mqtt")

        wait_for(
            lambda: status().get("source_readings_0_connection_status") == 1,
            "the rule's mqtt source to subscribe",
        )
        mqtt_client.publish(f"{topic}/in", messages(range(20)))
        expected = [{"id": i, "t": i * 2.0 * 2 + 1} for i in range(11, 20)]
        wait_for(lambda: len(mqtt_client.payloads(out_topic)) >= len(expected), "the rule's results")
        # then a last message: once its result is in, nothing else can still be on the way
        mqtt_client.publish(f"{topic}/in", [b'{"id": 100, "temperature": 50.0}'])
        wait_for(lambda: len(mqtt_client.payloads(out_topic)) >= len(expected) + 1, "the last result")
        got = [json.loads(p) for p in mqtt_client.payloads(out_topic)]
        assert got == expected + [{"id": 100, "t": 101.0}]
        s = status()
        assert s["source_readings_0_records_in_total"] == 21
        assert s["sink_mqtt_0_0_connection_status"] == 1
        assert s["sink_mqtt_0_0_rows_in_total"] == 10
    finally:
        manager.shutdown()


def test_source_reconnects_after_a_broker_restart_and_loses_nothing_the_broker_kept_at_qos1(
    new_broker: Callable[[], Mosquitto], tmp_path: Path
):
    broker = new_broker()
    source = MqttSourcePlugin().create(
        {
            "server": broker.url,
            "datasource": "plant/line1",
            "qos": 1,
            "clientid": "plutino-restart-test",
            "cleanSession": False,
            "reconnectMinDelay": 500,
            "reconnectMaxDelay": 1000,
        },
        CTX,
    )
    source.open()
    try:
        wait_for(lambda: source.status() == "connected", "the source to subscribe")
        publisher = MqttClient(broker)
        publisher.publish("plant/line1", messages(range(0, 10)))
        publisher.close()
        first = drain(source, 10)

        broker.stop()  # mosquitto saves the persistent session (subscription, queue) on SIGTERM
        wait_for(lambda: source.status() == "disconnected", "the source to see the broker go")
        broker.start()
        # published while the source has not reconnected yet: the broker queues them for its session
        publisher = MqttClient(broker)
        publisher.publish("plant/line1", messages(range(10, 30)))
        publisher.close()

        wait_for(lambda: source.status() == "connected", "the source to reconnect")
        rest = drain(source, 20, ids=range(10, 30))
        ids = [json.loads(p)["id"] for p in first + rest]
        assert sorted(set(ids)) == list(range(30))  # at qos 1 nothing is lost (a redelivery may repeat one)
        history = source.status_history
        assert history[:2] == ["connecting", "connected"]
        assert "disconnected" in history
        assert history[history.index("disconnected") + 1 :][-1] == "connected"
    finally:
        source.close()


def test_sink_sends_one_message_per_batch_or_per_row(mosquitto: Mosquitto, mqtt_client: MqttClient, topic: str):
    mqtt_client.subscribe(f"{topic}/#")
    batch = pa.RecordBatch.from_pylist([{"a": 1, "b": "x"}, {"a": 2, "b": None}])
    batched = MqttSinkPlugin().create({"server": mosquitto.url, "topic": f"{topic}/batched"}, CTX)
    single = MqttSinkPlugin().create(
        {"server": mosquitto.url, "topic": f"{topic}/single", "sendSingle": True, "fields": ["b", "a"], "qos": 0}, CTX
    )
    templated = MqttSinkPlugin().create(
        {"server": mosquitto.url, "topic": topic + "/by/{{.a}}", "sendSingle": True, "dataTemplate": "a={{.a}}"}, CTX
    )
    sinks = [batched, single, templated]
    for sink in sinks:
        sink.open()
    try:
        for sink in sinks:
            wait_for(lambda s=sink: s.status() == "connected", "the sink to connect")
            sink.write(batch)
        wait_for(lambda: len(mqtt_client.received) >= 5, "5 messages")
        assert mqtt_client.payloads(f"{topic}/batched") == [b'[{"a":1,"b":"x"},{"a":2,"b":null}]']
        assert mqtt_client.payloads(f"{topic}/single") == [b'{"b":"x","a":1}', b'{"b":null,"a":2}']
        assert mqtt_client.payloads(f"{topic}/by/1") == [b"a=1"]
        assert mqtt_client.payloads(f"{topic}/by/2") == [b"a=2"]
    finally:
        for sink in sinks:
            sink.close()
    assert batched.status() == "disconnected"


def test_sink_write_without_a_broker_is_an_io_error_the_engine_retries(new_broker: Callable[[], Mosquitto]):
    broker = new_broker()
    sink = MqttSinkPlugin().create(
        {"server": broker.url, "topic": "t", "publishTimeout": 200, "reconnectMinDelay": 100}, CTX
    )
    sink.open()
    try:
        wait_for(lambda: sink.status() == "connected", "the sink to connect")
        broker.stop()
        wait_for(lambda: sink.status() == "disconnected", "the sink to see the broker go")
        with pytest.raises(OSError) as err:
            sink.write(pa.RecordBatch.from_pylist([{"a": 1}]))
        assert str(err.value) == (f"mqtt sink 't': not connected to {broker.url}; the batch will be retried")
    finally:
        sink.close()


@pytest.mark.parametrize(
    "config, message",
    [
        (
            {},
            'mqtt source: no topic; give the stream DATASOURCE="<topic>", e.g. '
            'CREATE STREAM demo () WITH (DATASOURCE="sensors/#", FORMAT="json")',
        ),
        (
            {"datasource": "t", "server": "http://x"},
            "mqtt source: server 'http://x' is not a broker address; write "
            "scheme://host:port with a scheme among tcp, mqtt, ssl, tls, mqtts, ws, wss, e.g. tcp://127.0.0.1:1883",
        ),
        (
            {"datasource": "t", "cleanSession": False},
            "mqtt source: cleanSession false keeps a session at the broker "
            "under a client id, but no 'clientid' is set; set a fixed clientid",
        ),
        (
            {"datasource": "t", "qos": 3},
            "mqtt source: property 'qos' must be a whole number between 0 and 2, got 3; "
            'e.g. {"server": "tcp://127.0.0.1:1883", "qos": 1}',
        ),
        (
            {"datasource": "t", "sever": "tcp://h:1"},
            "mqtt source: unknown property 'sever'; did you mean 'server'? its "
            "properties are bufferLength, certificationPath, cleanSession, clientid, datasource, insecureSkipVerify, "
            "keepAlive, password, privateKeyPath, protocolVersion, qos, reconnectMaxDelay, reconnectMinDelay, "
            "rootCaPath, "
            'server, sessionExpiry, shareTakeover, username, e.g. {"server": "tcp://127.0.0.1:1883", "qos": 1}',
        ),
    ],
)
def test_source_configuration_mistakes_are_named(config: dict[str, Any], message: str):
    with pytest.raises(ValueError) as err:
        MqttSourcePlugin().create(config, CTX)
    assert str(err.value) == message


def test_sink_refuses_a_wildcard_topic():
    with pytest.raises(ValueError) as err:
        MqttSinkPlugin().create({"topic": "a/#"}, CTX)
    assert str(err.value).startswith("mqtt sink: property 'topic' must be a topic without the wildcards + and #")


def test_a_source_started_before_its_broker_reports_why_and_connects_when_the_broker_comes(tmp_path: Path):
    broker = Mosquitto(tmp_path / "late")  # not started yet
    source = MqttSourcePlugin().create(
        {"server": broker.url, "datasource": "late/#", "reconnectMinDelay": 50, "reconnectMaxDelay": 100}, CTX
    )
    source.open()
    try:
        errors: list[str] = []

        def failed() -> bool:
            try:
                source.next(0.05)
            except ConnectionError as exc:
                errors.append(str(exc))
            return bool(errors)

        wait_for(failed, "the source to report the missing broker")
        assert errors == [f"mqtt source 'late/#': cannot connect to {broker.url}; retrying (is the broker running?)"]
        assert source.status() == "disconnected"
        broker.start()
        wait_for(lambda: source.status() == "connected", "the source to connect to the late broker")
        assert source.next(0.01) is None  # the old failure is not raised again
    finally:
        source.close()
        broker.stop()
