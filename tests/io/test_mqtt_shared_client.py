"""Many mqtt sources on one shared connection (plutino.io.mqtt_hub), readiness callbacks, and
at-least-once acknowledgement with a persistent session -- against a real mosquitto."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pytest

from helpers import wait_for
from iohelpers import Mosquitto, MqttClient
from plutino.io.memory import MemoryBroker, MemorySourcePlugin
from plutino.io.mqtt import MqttSource, MqttSourcePlugin
from plutino.io.mqtt_hub import HUB
from plutino.io.mqtt_topics import matches, overlap
from plutino_contract.protocols import Context, EndOfStream

CTX = Context(plugin_name="mqtt", rule_id="r", op_id="source")


def source(config: dict[str, Any]) -> MqttSource:
    return MqttSourcePlugin().create(config, CTX)


def take_all(src: MqttSource) -> list[bytes]:
    got: list[bytes] = []
    while (batch := src.next(0)) is not None:
        got.extend(batch.column(0).to_pylist())
    return got


def lanes_of(broker: Mosquitto) -> list[Any]:
    return [lane for lane in HUB.lanes() if lane.conn.port == broker.port]


def test_topic_filters_match_and_overlap_as_mqtt_says():
    assert matches("a/+/c", "a/b/c") and not matches("a/+/c", "a/b/d") and not matches("a/+", "a/b/c")
    assert matches("a/#", "a") and matches("a/#", "a/b/c") and matches("#", "x") and not matches("#", "$SYS/x")
    assert overlap("a/#", "a/+/c") and overlap("a/+/c", "a/b/+") and not overlap("a/+/c", "a/b/d")
    assert not overlap("a/b", "a/b/c") and overlap("a/b", "a/b") and overlap("+/b", "a/+")


def test_six_hundred_sources_share_one_connection_and_each_gets_only_its_topic(
    mosquitto: Mosquitto, mqtt_client: MqttClient, topic: str
):
    # more than the 336 sources a process could hold with one connection each (select() and fd 1024)
    sources = [source({"server": mosquitto.url, "datasource": f"{topic}/{i}", "qos": 1}) for i in range(600)]
    for s in sources:
        s.open()
    try:
        wait_for(lambda: all(s.status() == "connected" for s in sources), "600 subscriptions")
        assert len(lanes_of(mosquitto)) == 1
        assert len({id(s._client) for s in sources}) == 1
        for i in range(600):
            mqtt_client.publish(f"{topic}/{i}", [b"%d" % i, b"%d again" % i])
        wait_for(lambda: all(s.received == 2 for s in sources), "every source's two messages")
        for i, s in enumerate(sources):
            assert take_all(s) == [b"%d" % i, b"%d again" % i]
        assert all(s.received == 2 for s in sources)
    finally:
        for s in sources:
            s.close()
    assert lanes_of(mosquitto) == []  # the last source closed the connection


def test_wildcard_and_identical_filters_each_get_every_matching_message_once(
    mosquitto: Mosquitto, mqtt_client: MqttClient, topic: str
):
    filters = {"exact": f"{topic}/a/x", "plus": f"{topic}/+/x", "hash": f"{topic}/#", "twin1": f"{topic}/b/+",
               "twin2": f"{topic}/b/+"}
    sources = {name: source({"server": mosquitto.url, "datasource": f, "qos": 1}) for name, f in filters.items()}
    for s in sources.values():
        s.open()
    try:
        wait_for(lambda: all(s.status() == "connected" for s in sources.values()), "the subscriptions")
        # overlapping filters are on different connections (a broker may send one copy per subscription)
        assert sources["twin1"]._client is sources["twin2"]._client
        assert sources["exact"]._client is not sources["plus"]._client
        for t in ("a/x", "b/x", "b/y", "c/z"):
            mqtt_client.publish(f"{topic}/{t}", [t.encode()])
        expected = {"exact": [b"a/x"], "plus": [b"a/x", b"b/x"], "hash": [b"a/x", b"b/x", b"b/y", b"c/z"],
                    "twin1": [b"b/x", b"b/y"], "twin2": [b"b/x", b"b/y"]}
        wait_for(lambda: all(sources[n].received >= len(e) for n, e in expected.items()), "the messages")
        mqtt_client.publish(f"{topic}/end", [b"end"])  # once it is in, nothing else is on the way
        wait_for(lambda: sources["hash"].received == 5, "the last message")
        got = {name: take_all(s) for name, s in sources.items()}
        assert got == {**expected, "hash": expected["hash"] + [b"end"]}
    finally:
        for s in sources.values():
            s.close()


def test_a_source_closing_does_not_disturb_the_others_on_its_connection(
    mosquitto: Mosquitto, mqtt_client: MqttClient, topic: str
):
    a, b, c = (source({"server": mosquitto.url, "datasource": f"{topic}/{n}"}) for n in "abc")
    twin = source({"server": mosquitto.url, "datasource": f"{topic}/a"})
    for s in (a, b, c, twin):
        s.open()
    try:
        wait_for(lambda: all(s.status() == "connected" for s in (a, b, c, twin)), "the subscriptions")
        b.close()
        twin.close()  # its filter stays subscribed for a
        for n in "abc":
            mqtt_client.publish(f"{topic}/{n}", [n.encode()])
        wait_for(lambda: a.received == 1 and c.received == 1, "a's and c's messages")
        assert take_all(a) == [b"a"] and take_all(c) == [b"c"]
        assert b.received == 0 and twin.received == 0 and b.status() == "disconnected"
        assert a.status() == "connected" and c.status() == "connected"
    finally:
        for s in (a, c):
            s.close()


def test_a_broker_restart_resubscribes_every_source_of_a_shared_connection(new_broker: Callable[[], Mosquitto]):
    broker = new_broker()
    sources = [source({"server": broker.url, "datasource": f"restart/{i}", "reconnectMinDelay": 100,
                       "reconnectMaxDelay": 200}) for i in range(20)]
    for s in sources:
        s.open()
    try:
        wait_for(lambda: all(s.status() == "connected" for s in sources), "the subscriptions")
        broker.stop()
        wait_for(lambda: all(s.status() == "disconnected" for s in sources), "the sources to see the broker go")
        broker.start()  # a clean session: the broker forgot the subscriptions; the hub makes them again
        wait_for(lambda: all(s.status() == "connected" for s in sources), "the sources to subscribe again")
        publisher = MqttClient(broker)
        for i in range(20):
            publisher.publish(f"restart/{i}", [b"after %d" % i])
        publisher.close()
        wait_for(lambda: all(s.received == 1 for s in sources), "a message for each")
        assert [take_all(s) for s in sources] == [[b"after %d" % i] for i in range(20)]
        assert len(lanes_of(broker)) == 1
    finally:
        for s in sources:
            s.close()


def test_set_ready_calls_back_when_next_has_messages_or_an_error(
    mosquitto: Mosquitto, mqtt_client: MqttClient, topic: str, tmp_path: Path
):
    ready = threading.Event()
    s = source({"server": mosquitto.url, "datasource": topic})
    s.open()
    s.set_ready(ready.set)
    try:
        wait_for(lambda: s.status() == "connected", "the subscription")
        assert not ready.is_set() and s.next(0) is None
        mqtt_client.publish(topic, [b"1", b"2"])
        assert ready.wait(5)
        wait_for(lambda: s.received == 2, "the messages")
        assert take_all(s) == [b"1", b"2"]
    finally:
        s.close()
    # an error to raise is news too: a broker that is not there
    late = Mosquitto(tmp_path / "absent")
    failing = source({"server": late.url, "datasource": "x", "reconnectMinDelay": 50, "reconnectMaxDelay": 100})
    failed = threading.Event()
    failing.open()
    failing.set_ready(failed.set)
    try:
        assert failed.wait(5)
        with pytest.raises(ConnectionError, match="cannot connect to"):
            failing.next(0)
    finally:
        failing.close()


def test_memory_source_set_ready_calls_back_for_batches_and_the_end(memory_broker: MemoryBroker):
    src = MemorySourcePlugin(memory_broker).create({"datasource": "in"}, CTX)
    calls: list[int] = []
    src.open()
    memory_broker.publish("in", pa.RecordBatch.from_pylist([{"a": 1}]))
    src.set_ready(lambda: calls.append(1))  # something was queued before: called at once
    assert calls == [1]
    assert src.next(0).num_rows == 1 and src.next(0) is None
    memory_broker.publish("in", pa.RecordBatch.from_pylist([{"a": 2}]))
    memory_broker.end("in")
    assert calls == [1, 1, 1]
    assert src.next(0).num_rows == 1
    with pytest.raises(EndOfStream):
        src.next(0)
    src.close()


def persistent(broker: Mosquitto, client_id: str, version: str = "3.1.1") -> MqttSource:
    return source({"server": broker.url, "datasource": "orders", "qos": 1, "clientid": client_id,
                   "cleanSession": False, "protocolVersion": version})


@pytest.mark.parametrize("version", ["3.1.1", "5"])
def test_with_a_persistent_session_messages_taken_but_not_acknowledged_come_again(
    new_broker: Callable[[], Mosquitto], version: str
):
    broker = new_broker()
    client_id = f"plutino-ack-{uuid.uuid4().hex[:8]}"
    s = persistent(broker, client_id, version)
    s.open()
    publisher = MqttClient(broker)
    try:
        wait_for(lambda: s.status() == "connected", "the subscription")
        assert s.at_least_once
        publisher.publish("orders", [b"a1", b"a2", b"a3"])
        wait_for(lambda: s.received == 3, "the first messages")
        first = s.next(0)
        ack_first = s.take_ack()
        publisher.publish("orders", [b"b1", b"b2"])
        wait_for(lambda: s.received == 5, "the second messages")
        second = s.next(0)
        ack_second = s.take_ack()
        assert first.column(0).to_pylist() == [b"a1", b"a2", b"a3"]
        assert second.column(0).to_pylist() == [b"b1", b"b2"]
        assert ack_first is not None and ack_second is not None
        sent: list[int] = []
        real = s._client._send_puback
        s._client._send_puback = lambda mid: (sent.append(mid), real(mid))[1]
        ack_second()  # done first, but PUBACKs go in the order the messages came: none yet
        assert sent == [] and s.take_ack() is None
        ack_first()
        assert len(sent) == 5 and len(set(sent)) == 5  # a1..a3 then b1, b2
        ack_first()  # twice is once
        assert len(sent) == 5
        publisher.publish("orders", [b"c1", b"c2"])
        wait_for(lambda: s.received == 7, "the third messages")
        assert s.next(0).column(0).to_pylist() == [b"c1", b"c2"]
        assert s.take_ack() is not None  # ... never called: the rule did not deliver them
    finally:
        s.close()
    again = persistent(broker, client_id, version)
    again.open()
    try:
        wait_for(lambda: again.received >= 2, "the broker to send the unacknowledged messages again")
        assert take_all(again) == [b"c1", b"c2"]
        assert again.redelivered == 2
        publisher.publish("orders", [b"d1"])
        wait_for(lambda: again.received == 3, "a new message")
        assert take_all(again) == [b"d1"] and again.redelivered == 2
    finally:
        again.close()
        publisher.close()


def test_an_engine_that_does_not_take_acknowledgements_gets_them_on_the_next_read(
    new_broker: Callable[[], Mosquitto]
):
    broker = new_broker()
    client_id = f"plutino-ack-{uuid.uuid4().hex[:8]}"
    s = persistent(broker, client_id)
    s.open()
    publisher = MqttClient(broker)
    try:
        wait_for(lambda: s.status() == "connected", "the subscription")
        # more than mosquitto's in-flight window of 20: it would stall if nothing were acknowledged
        publisher.publish("orders", [b"%d" % i for i in range(100)])
        got: list[bytes] = []

        def read() -> bool:
            batch = s.next(0.05)  # each read acknowledges the batch before
            if batch is not None:
                got.extend(batch.column(0).to_pylist())
            return len(got) >= 100

        wait_for(read, "100 messages read without acknowledging them")
        assert got == [b"%d" % i for i in range(100)]
        assert s.next(0) is None and s.dropped == 0
    finally:
        s.close()
        publisher.close()
