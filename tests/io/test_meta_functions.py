"""meta(key) / meta(*) / mqtt(topic) through a real mosquitto and a RuleManager: each row gets
its own message's topic on a wildcard subscription; newuuid() and cardinality(); the
metadata's columnar path (runs per delivered group) and the compile-time checks."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pytest

from helpers import wait_for
from iohelpers import Mosquitto, MqttClient
from plutino.engine import RuleManager
from plutino.engine.errors import RuleError, SqlError
from plutino.engine.meta_functions import with_meta
from plutino.engine.plugin_config import YamlConfigResolver
from plutino.io.formats import bytes_decoder
from plutino.io.memory import MemoryBroker
from plutino.io.mqtt_fast_client import Route
from plutino.io.mqtt_source import META_TOPIC, MqttSource


@pytest.fixture
def manager(registry: Any, mosquitto: Mosquitto, tmp_path: Path) -> Iterator[RuleManager]:
    etc = tmp_path / "sources"
    etc.mkdir()
    (etc / "mqtt.yaml").write_text(f"default:\n  server: {mosquitto.url}\n  qos: 1\n")
    m = RuleManager(registry, config_for=YamlConfigResolver({"source": [etc], "sink": []}))
    yield m
    m.shutdown()


def rows(sub: Any, n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(out) < n and time.monotonic() < deadline:
        batch = sub.get(0.05)
        if batch is not None:
            out.extend(batch.to_pylist())
    assert len(out) == n, f"{len(out)} rows arrived, not {n}: {out}"
    return out


def subscribed(m: RuleManager, rule: str, stream: str) -> None:
    wait_for(lambda: m.rule_status(rule).get(f"source_{stream}_0_connection_status") == 1, "the subscription")


def test_each_row_gets_its_own_messages_topic_on_a_wildcard_subscription(
    manager: RuleManager, memory_broker: MemoryBroker, mqtt_client: MqttClient, topic: str
):
    out = memory_broker.subscribe("meta_out")
    manager.create_stream(f'CREATE STREAM s (temperature FLOAT) WITH (DATASOURCE="{topic}/#", FORMAT="json")')
    manager.create_rule(
        {
            "id": "meta",
            "sql": "SELECT temperature, meta(topic) AS t, mqtt(topic) AS t2 FROM s",
            "actions": [{"memory": {"topic": "meta_out"}}],
        }
    )
    subscribed(manager, "meta", "s")
    for i in range(6):  # interleaved: a, b, a, b, ...
        mqtt_client.publish(f"{topic}/{'ab'[i % 2]}", [json.dumps({"temperature": i}).encode()])
    got = rows(out, 6)
    assert sorted((r["temperature"], r["t"], r["t2"]) for r in got) == [
        (float(i), f"{topic}/{'ab'[i % 2]}", f"{topic}/{'ab'[i % 2]}") for i in range(6)
    ]


def test_meta_star_and_select_star_on_a_schemaless_stream(
    manager: RuleManager, memory_broker: MemoryBroker, mqtt_client: MqttClient, topic: str
):
    out = memory_broker.subscribe("star_out")
    manager.create_stream(f'CREATE STREAM free () WITH (DATASOURCE="{topic}/+/x")')
    manager.create_rule(
        {"id": "star", "sql": "SELECT *, meta(*) AS m FROM free WHERE meta(topic) != ''",
         "actions": [{"memory": {"topic": "star_out"}}]}
    )
    subscribed(manager, "star", "free")
    mqtt_client.publish(f"{topic}/1/x", [b'[{"a": 1}, {"a": 2}]'])  # one message, two rows
    mqtt_client.publish(f"{topic}/2/x", [b'{"b": "z"}'])
    got = sorted(({k: v for k, v in r.items() if v is not None} for r in rows(out, 3)), key=lambda r: r.get("a", 9))
    assert got == [
        {"a": 1, "m": {"topic": f"{topic}/1/x"}},
        {"a": 2, "m": {"topic": f"{topic}/1/x"}},
        {"b": "z", "m": {"topic": f"{topic}/2/x"}},
    ]  # SELECT * leaves the hidden __meta_topic column out


def test_newuuid_and_cardinality(manager: RuleManager, memory_broker: MemoryBroker):
    out = memory_broker.subscribe("uuid_out")
    manager.create_stream('CREATE STREAM mem (xs ARRAY(BIGINT)) WITH (TYPE="memory", DATASOURCE="uuid_in")')
    manager.create_rule(
        {"id": "u", "sql": "SELECT newuuid() AS id, cardinality(xs) AS n FROM mem",
         "actions": [{"memory": {"topic": "uuid_out"}}]}
    )
    time.sleep(0.2)
    memory_broker.publish("uuid_in", pa.RecordBatch.from_pylist([{"xs": [1, 2, 3]}, {"xs": []}]))
    got = rows(out, 2)
    assert [r["n"] for r in got] == [3, 0]
    ids = [uuid.UUID(r["id"]) for r in got]
    assert ids[0] != ids[1] and all(i.version == 4 for i in ids)


@pytest.mark.parametrize(
    "stream, sql, message",
    [
        ('CREATE STREAM q (a BIGINT) WITH (DATASOURCE="t")', "SELECT meta(qos) FROM q",
         "meta(qos): the mqtt source gives no key 'qos' (not kept by Plutino yet)"),
        ('CREATE STREAM q (a BIGINT) WITH (TYPE="memory", DATASOURCE="t")', "SELECT a FROM q WHERE meta(topic) = 'x'",
         "meta(): stream q's source (TYPE \"memory\") gives no metadata"),
        ('CREATE STREAM q (a BIGINT) WITH (TYPE="memory", DATASOURCE="t")', "SELECT mqtt(topic) FROM q",
         "mqtt() reads an MQTT message's metadata, but stream q is of TYPE \"memory\""),
        ('CREATE STREAM q (a BIGINT) WITH (DATASOURCE="t")', "SELECT meta(topic, qos) FROM q", "meta() takes one key"),
    ],
)
def test_metadata_the_source_does_not_give_is_refused_when_the_rule_is_made(
    manager: RuleManager, stream: str, sql: str, message: str
):
    manager.create_stream(stream)
    with pytest.raises((SqlError, RuleError)) as err:
        manager.create_rule({"id": "bad", "sql": sql, "actions": [{"nop": {}}]})
    assert message in str(err.value)


def test_the_source_keeps_topics_as_runs_only_when_asked():
    plain, keeping = MqttSource(None, "a/#", 1000, "t"), MqttSource(None, "a/#", 1000, "t")
    keeping.want_meta()
    a, b = Route((plain, keeping), "a/1"), Route((plain, keeping), "a/2")
    a.deliver([b'{"v": 1}', b'{"v": 2}'])
    b.deliver([b'{"v": 3}', b"not json", b'[{"v": 4}, {"v": 5}]'])
    a.deliver([b'{"v": 6}'])
    assert plain.next(0).schema.metadata is None  # a rule without meta(): nothing kept
    batch = keeping.next(0)
    assert json.loads(batch.schema.metadata[META_TOPIC]) == [["a/1", 2], ["a/2", 3], ["a/1", 1]]
    errors: list[str] = []
    decoded = with_meta(bytes_decoder("json", None, on_error=errors.append))(batch)
    assert sorted((r["v"], r["__meta_topic"]) for r in decoded.to_pylist()) == [
        (1, "a/1"), (2, "a/1"), (3, "a/2"), (4, "a/2"), (5, "a/2"), (6, "a/1")
    ]
    assert len(errors) == 1  # the payload that is not JSON, counted once
