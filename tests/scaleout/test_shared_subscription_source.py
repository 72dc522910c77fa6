"""The mqtt source's shared subscriptions against a real mosquitto, in this process (issue 18):
what a SHARE_GROUP stream subscribes, how its messages are routed and what ``meta(topic)`` says,
how it sits beside other subscriptions of the same topics on the process's connections, and
the mistakes refused at CREATE STREAM. The two-host test is test_shared_subscription_hosts.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from api.api_helpers import io_helpers
from helpers import wait_for
from plutino.engine.errors import SqlError
from plutino.engine.streams import parse_create_stream
from plutino.io.mqtt import HUB, MqttSource, MqttSourcePlugin
from plutino.io.mqtt_source import META_TOPIC
from plutino_contract.protocols import Context

pytestmark = pytest.mark.scaleout
_io = io_helpers()
CTX = Context(plugin_name="mqtt", rule_id="r", op_id="source")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    mosquitto = _io.Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
def client(broker: Any) -> Iterator[Any]:
    c = _io.MqttClient(broker)
    yield c
    c.close()


@pytest.fixture
def base() -> str:
    return f"share-test/{uuid.uuid4().hex[:10]}"


def _open(broker: Any, datasource: str, **conf: Any) -> MqttSource:
    source = MqttSourcePlugin().create({"server": broker.url, "datasource": datasource, "qos": 1, **conf}, CTX)
    source.open()
    return source


def _drain(source: MqttSource, want: int) -> tuple[list[int], list[Any]]:
    """The ids of ``want`` messages (more if they come), and the topic runs of their batches."""
    ids: list[int] = []
    runs: list[Any] = []

    def more() -> bool:
        batch = source.next(0.05)
        if batch is not None:
            ids.extend(json.loads(p)["id"] for p in batch.column(0).to_pylist())
            meta = (batch.schema.metadata or {}).get(META_TOPIC)
            if meta is not None:
                runs.extend(orjson.loads(meta))
        return len(ids) >= want

    wait_for(more, f"{want} messages from {source.topic!r} (got {len(ids)})")
    return ids, runs


def test_a_share_group_and_a_share_datasource_are_one_subscription(broker: Any, client: Any, base: str) -> None:
    """SHARE_GROUP="g1" and DATASOURCE="$share/g1/..." make the same filter; sources of it share
    one subscription (one member of the group), each getting every message, with its topic."""
    written = parse_create_stream(f'CREATE STREAM s () WITH (DATASOURCE="{base}/#", SHARE_GROUP="g1")')
    ekuiper = parse_create_stream(f'CREATE STREAM s () WITH (DATASOURCE="$share/g1/{base}/#")')
    datasource = f"$share/g1/{base}/#"
    assert written.source_properties()["datasource"] == ekuiper.source_properties()["datasource"] == datasource
    first = _open(broker, f"$share/g1/{base}/#")
    second = _open(broker, ekuiper.source_properties()["datasource"])
    try:
        first.want_meta()
        wait_for(lambda: first.status() == second.status() == "connected", "the sources to subscribe")
        assert first._lane is second._lane and list(first._lane.sources) == [f"$share/g1/{base}/#"]
        client.publish(f"{base}/a", [b'{"id": %d}' % i for i in range(20)])
        ids, runs = _drain(first, 20)
        assert ids == list(range(20))
        assert {t for t, _ in runs} == {f"{base}/a"} and sum(n for _, n in runs) == 20  # the topic, not $share/...
        assert _drain(second, 20)[0] == list(range(20))
    finally:
        first.close()
        second.close()


def test_other_groups_and_the_plain_filter_of_one_topic_each_get_every_message_once(
    broker: Any, client: Any, base: str
) -> None:
    """The broker sends a client one copy per matching subscription, so a shared subscription
    goes to a connection of its own beside the plain filter of its topics and another group's."""
    filters = [f"$share/g1/{base}/#", f"{base}/#", f"$share/g2/{base}/+", f"$share/g1/{base}/exact", f"{base}/exact"]
    sources = [_open(broker, f) for f in filters]
    try:
        wait_for(lambda: all(s.status() == "connected" for s in sources), "the sources to subscribe")
        lanes = [s._lane for s in sources]
        assert len({id(lane) for lane in lanes}) == len(filters), "two overlapping subscriptions on one connection"
        client.publish(f"{base}/exact", [b'{"id": %d}' % i for i in range(30)])
        for source in sources:
            assert sorted(_drain(source, 30)[0]) == list(range(30)), source.topic
        client.publish(f"{base}/other", [b'{"id": 99}'])
        for source in sources[:3]:
            assert _drain(source, 1)[0] == [99], source.topic
        assert sum(s.received for s in sources) == 30 * 5 + 3
    finally:
        for source in sources:
            source.close()
    assert not HUB.lanes()


def test_two_members_of_a_group_split_its_messages(broker: Any, client: Any, base: str) -> None:
    """Two connections (client ids) in one group: each message reaches one of them."""
    members = [_open(broker, f"$share/split/{base}/t", clientid=f"plutino-split-{i}-{uuid.uuid4().hex[:6]}")
               for i in range(2)]
    try:
        wait_for(lambda: all(m.status() == "connected" for m in members), "the members to subscribe")
        client.publish(f"{base}/t", [b'{"id": %d}' % i for i in range(100)])
        got: list[list[int]] = [[], []]
        wait_for(lambda: sum(len(g) for g in _take(members, got)) >= 100, "100 messages across the two members")
        assert sorted(got[0] + got[1]) == list(range(100))
        assert got[0] and got[1], f"one member got nothing: {got}"
    finally:
        for member in members:
            member.close()


def _take(members: list[MqttSource], got: list[list[int]]) -> list[list[int]]:
    for member, ids in zip(members, got):
        batch = member.next(0.02)
        if batch is not None:
            ids.extend(json.loads(p)["id"] for p in batch.column(0).to_pylist())
    return got


@pytest.mark.parametrize("with_, message", [
    ('DATASOURCE="t/#", SHARE_GROUP="a/b"', "SHARE_GROUP=\"a/b\" of stream 's' contains '/'"),
    ('DATASOURCE="t/#", SHARE_GROUP="g+"', "SHARE_GROUP=\"g+\" of stream 's' contains '+'"),
    ('DATASOURCE="t/#", SHARE_GROUP="#"', "SHARE_GROUP=\"#\" of stream 's' contains '#'"),
    ('DATASOURCE="t/#", SHARE_GROUP=""', "SHARE_GROUP=\"\" of stream 's' is empty"),
    ('SHARE_GROUP="g1"', "stream 's' has SHARE_GROUP=\"g1\" but no DATASOURCE to share"),
    ('DATASOURCE="$share/g1/t", SHARE_GROUP="g1"', "a shared subscription already"),
    ('DATASOURCE="$share/+/t"', "the share group '+' of '$share/+/t' contains '+'"),
    ('DATASOURCE="$share/g1"', "'$share/g1' names no topic filter after its share group"),
    ('DATASOURCE="$share//t"', "the share group '' of '$share//t' is empty"),
    ('TYPE="memory", DATASOURCE="t", SHARE_GROUP="g1"', "SHARE_GROUP is a property of mqtt streams"),
])
def test_a_malformed_shared_subscription_is_refused_at_create_with_the_fix(with_: str, message: str) -> None:
    with pytest.raises(SqlError) as err:
        parse_create_stream(f"CREATE STREAM s () WITH ({with_})")
    assert message in str(err.value)
    assert 'SHARE_GROUP="' in str(err.value) or 'TYPE="mqtt"' in str(err.value)  # the fix


def test_the_source_refuses_a_malformed_share_filter_from_its_config() -> None:
    with pytest.raises(ValueError, match=r"mqtt source: the share group 'a\+' of '\$share/a\+/t' contains '\+'.*"
                                         r'write SHARE_GROUP="<group>"'):
        MqttSourcePlugin().create({"datasource": "$share/a+/t"}, CTX)


def test_share_takeover_must_be_true_or_false() -> None:
    """``shareTakeover`` (mqtt_takeover.py) is a flag; anything else is refused naming it."""
    with pytest.raises(ValueError) as err:
        MqttSourcePlugin().create({"datasource": "$share/g1/t", "shareTakeover": "sometimes"}, CTX)
    assert "'shareTakeover'" in str(err.value) and "true or false" in str(err.value), str(err.value)
    off = MqttSourcePlugin().create({"datasource": "$share/g1/t", "shareTakeover": "false"}, CTX)
    assert off.conn.share_takeover is False
