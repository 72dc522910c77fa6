"""Many mqtt sinks publishing through one shared connection (plutino.io.mqtt_sink_hub), against a
real mosquitto: per-sink QoS, retained flag, acknowledgements and timeouts, status, close and
reconnection."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from typing import Any, Callable

import paho.mqtt.client as paho
import pyarrow as pa
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from helpers import wait_for
from iohelpers import WAIT_S, Mosquitto, MqttClient
from plutino.io.mqtt import MqttSinkPlugin
from plutino.io.mqtt_sink import MqttSink
from plutino.io.mqtt_sink_hub import SINK_HUB, _PublishClient
from plutino_contract.protocols import Context

CTX = Context(plugin_name="mqtt", rule_id="r", op_id="sink")


def sink(config: dict[str, Any]) -> MqttSink:
    made = MqttSinkPlugin().create(config, CTX)
    assert isinstance(made, MqttSink)
    return made


def lanes_of(broker: Mosquitto) -> list[Any]:
    return [lane for lane in SINK_HUB.lanes() if lane.conn.port == broker.port]


def rows(*values: Any) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([{"v": v} for v in values])


class Recorder:
    """A subscriber that keeps each message's topic, payload, QoS and retained flag."""

    def __init__(self, broker: Mosquitto, topic_filter: str) -> None:
        self.got: list[tuple[str, bytes, int, bool]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"rec-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.client.subscribe(topic_filter, 2)
        assert subscribed.wait(WAIT_S)

    def _on_message(self, client: Any, userdata: Any, m: paho.MQTTMessage) -> None:
        with self._lock:
            self.got.append((m.topic, bytes(m.payload), m.qos, bool(m.retain)))

    def payloads(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _, _ in self.got if t == topic]

    def count(self) -> int:
        with self._lock:
            return len(self.got)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_six_hundred_sinks_publish_through_one_connection(mosquitto: Mosquitto, topic: str):
    # more than the ~336 one-connection-each sinks paho's select() allowed a process
    recorder = Recorder(mosquitto, f"{topic}/#")
    threads_before = threading.active_count()
    sinks = [sink({"server": mosquitto.url, "topic": f"{topic}/{i}", "qos": i % 2, "sendSingle": True})
             for i in range(600)]
    for s in sinks:
        s.open()
    try:
        wait_for(lambda: all(s.status() == "connected" for s in sinks), "600 sinks connected")
        assert len(lanes_of(mosquitto)) == 1
        assert len({id(s._client) for s in sinks}) == 1
        assert threading.active_count() - threads_before <= 2  # one network thread, not 600
        def write(part: range) -> None:  # QoS 1 writes each wait a round trip: 20 threads at once
            for i in part:
                sinks[i].write(rows(i, -i))

        writers = [threading.Thread(target=write, args=(range(k, 600, 20),)) for k in range(20)]
        for t in writers:
            t.start()
        for t in writers:
            t.join(WAIT_S * 4)
        wait_for(lambda: recorder.count() >= 1200, "every sink's two messages")
        for i in range(600):
            assert recorder.payloads(f"{topic}/{i}") == [b'{"v":%d}' % i, b'{"v":%d}' % -i]
    finally:
        for s in sinks:
            s.close()
        recorder.close()
    assert lanes_of(mosquitto) == []  # the last sink closed the connection
    assert all(s.status() == "disconnected" for s in sinks)


def test_a_clientid_gets_its_own_connection_and_other_options_another(mosquitto: Mosquitto, topic: str):
    base = {"server": mosquitto.url, "topic": topic}
    shared1, shared2 = sink(base), sink(base)
    own = sink({**base, "clientid": f"own-{uuid.uuid4().hex[:8]}"})
    other = sink({**base, "keepAlive": 17})
    made = [shared1, shared2, own, other]
    for s in made:
        s.open()
    try:
        wait_for(lambda: all(s.status() == "connected" for s in made), "the sinks to connect")
        assert shared1._client is shared2._client
        assert own._client is not shared1._client and other._client is not shared1._client
        assert own._client is not other._client
        assert own._client._client_id == own.conn.client_id.encode()
        assert len(lanes_of(mosquitto)) == 3
    finally:
        for s in made:
            s.close()
    assert lanes_of(mosquitto) == []


def test_closing_a_sink_leaves_the_others_publishing(mosquitto: Mosquitto, mqtt_client: MqttClient, topic: str):
    mqtt_client.subscribe(f"{topic}/#")
    a, b, c = (sink({"server": mosquitto.url, "topic": f"{topic}/{n}"}) for n in "abc")
    for s in (a, b, c):
        s.open()
    try:
        wait_for(lambda: all(s.status() == "connected" for s in (a, b, c)), "the sinks to connect")
        lane = a._lane
        b.close()
        assert b.status() == "disconnected" and a.status() == "connected" and c.status() == "connected"
        with pytest.raises(OSError, match="not open"):
            b.write(rows(0))
        a.write(rows(1))
        c.write(rows(3))
        wait_for(lambda: len(mqtt_client.payloads()) == 2, "a's and c's messages")
        assert mqtt_client.payloads(f"{topic}/a") == [b'[{"v":1}]']
        assert mqtt_client.payloads(f"{topic}/c") == [b'[{"v":3}]']
        assert a._lane is lane and lane in SINK_HUB.lanes()
    finally:
        for s in (a, c):
            s.close()


def test_a_broker_restart_reconnects_the_shared_connection(new_broker: Callable[[], Mosquitto]):
    broker = new_broker()
    sinks = [sink({"server": broker.url, "topic": f"restart/{i}", "publishTimeout": 300, "reconnectMinDelay": 100,
                   "reconnectMaxDelay": 200}) for i in range(20)]
    for s in sinks:
        s.open()
    try:
        wait_for(lambda: all(s.status() == "connected" for s in sinks), "the sinks to connect")
        broker.stop()
        wait_for(lambda: all(s.status() == "disconnected" for s in sinks), "the sinks to see the broker go")
        for s in sinks[:3]:
            with pytest.raises(OSError, match="not connected"):
                s.write(rows(0))
        broker.start()
        wait_for(lambda: all(s.status() == "connected" for s in sinks), "the sinks to reconnect")
        recorder = Recorder(broker, "restart/#")
        for i, s in enumerate(sinks):
            s.write(rows(i))
        wait_for(lambda: recorder.count() >= 20, "a message of each sink")
        assert [recorder.payloads(f"restart/{i}") for i in range(20)] == [[b'[{"v":%d}]' % i] for i in range(20)]
        recorder.close()
        assert len(lanes_of(broker)) == 1
        assert sinks[0].status_history[-3:] == ["connected", "disconnected", "connected"]
    finally:
        for s in sinks:
            s.close()


def test_sinks_writing_from_threads_keep_their_qos_retained_flag_and_acknowledgements(
    mosquitto: Mosquitto, topic: str
):
    specs = [(qos, retained) for qos in (0, 1, 2) for retained in (False, True)] * 2
    topics = [f"{topic}/q{qos}/{k}" for k, (qos, _) in enumerate(specs)]
    # one subscriber per QoS: mosquitto may reorder what it sends one client at QoS 1 and 2 mixed
    recorders = {qos: Recorder(mosquitto, f"{topic}/q{qos}/#") for qos in (0, 1, 2)}
    sinks = [sink({"server": mosquitto.url, "topic": t, "qos": qos, "retained": retained, "sendSingle": True})
             for t, (qos, retained) in zip(topics, specs)]
    for s in sinks:
        s.open()
    errors: list[BaseException] = []
    per_sink = 30

    def run(k: int, s: MqttSink) -> None:
        try:
            for n in range(per_sink):
                s.write(rows(*(k * 1000 + n * 10 + j for j in range(10))))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    try:
        wait_for(lambda: all(s.status() == "connected" for s in sinks), "the sinks to connect")
        # QoS 0 and 1 on one connection, QoS 2 on another (mosquitto drops what is past its
        # in-flight window of QoS 2 messages, QoS 1 ones included while QoS 2 ones fill it)
        assert len({id(s._client) for s, (q, _) in zip(sinks, specs) if q < 2}) == 1
        assert len({id(s._client) for s, (q, _) in zip(sinks, specs) if q == 2}) == 1
        assert len(lanes_of(mosquitto)) == 2
        threads = [threading.Thread(target=run, args=(k, s)) for k, s in enumerate(sinks)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT_S * 4)
        assert errors == []
        wait_for(lambda: sum(r.count() for r in recorders.values()) >= len(sinks) * per_sink * 10, "every message")
        for k, (qos, _retained) in enumerate(specs):
            got = [(p, q, r) for t, p, q, r in recorders[qos].got if t == topics[k]]
            assert [p for p, _, _ in got] == [b'{"v":%d}' % (k * 1000 + n) for n in range(per_sink * 10)]
            assert {q for _, q, _ in got} == {qos}  # a subscriber at QoS 2 gets what the sink sent
            assert not any(r for _, _, r in got)  # a live subscriber sees no retained flag
        # a later subscriber gets the retained message of each retained sink, and only theirs
        late = Recorder(mosquitto, f"{topic}/#")
        wait_for(lambda: late.count() >= sum(r for _, r in specs), "the retained messages")
        assert sorted(t for t, _, _, _ in late.got) == sorted(t for t, (_, r) in zip(topics, specs) if r)
        assert all(r for _, _, _, r in late.got)
        late.close()
    finally:
        for s in sinks:
            s.close()
        for r in recorders.values():
            r.close()
        cleaner = MqttClient(mosquitto)  # the retained messages out of the shared broker
        for t, (_, r) in zip(topics, specs):
            if r:
                cleaner.client.publish(t, b"", 1, retain=True).wait_for_publish(WAIT_S)
        cleaner.close()


def test_publish_timeout_is_per_sink_while_the_broker_does_not_acknowledge(new_broker: Callable[[], Mosquitto]):
    broker = new_broker()
    base = {"server": broker.url, "qos": 1, "sendSingle": True}
    quick = sink({**base, "topic": "t/quick", "publishTimeout": 300})
    patient = sink({**base, "topic": "t/patient", "publishTimeout": 30_000})
    fire = sink({**base, "topic": "t/fire", "qos": 0})
    made = [quick, patient, fire]
    for s in made:
        s.open()
    recorder = Recorder(broker, "t/#")
    assert broker.proc is not None
    outcome: list[Any] = []
    try:
        wait_for(lambda: all(s.status() == "connected" for s in made), "the sinks to connect")
        os.kill(broker.proc.pid, signal.SIGSTOP)  # the broker acknowledges nothing
        try:
            waiting = threading.Thread(target=lambda: outcome.append(patient.write(rows(1, 2))))
            waiting.start()
            with pytest.raises(TimeoutError, match="did not acknowledge the messages within 0.3 s"):
                quick.write(rows(3))
            fire.write(rows(4))  # QoS 0: nothing to wait for
            assert waiting.is_alive()  # the quick sink's timeout is not the patient one's
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
        waiting.join(WAIT_S)
        assert outcome == [None]  # acknowledged once the broker woke up
        quick.write(rows(5))
        wait_for(lambda: len(recorder.payloads("t/quick")) >= 2, "the quick sink's messages")
        assert recorder.payloads("t/patient") == [b'{"v":1}', b'{"v":2}']
        assert recorder.payloads("t/fire") == [b'{"v":4}']
        assert recorder.payloads("t/quick") == [b'{"v":3}', b'{"v":5}']  # the timed-out one arrived late
    finally:
        for s in made:
            s.close()
        recorder.close()


def test_message_ids_skip_those_awaiting_an_acknowledgement(new_broker: Callable[[], Mosquitto]):
    """QoS 0 messages of one sink take message ids round while a QoS 1 message of another awaits
    its PUBACK: the next QoS 1 message must not get the id still taken (paho would refuse it)."""
    broker = new_broker()
    base = {"server": broker.url, "sendSingle": True}
    first = sink({**base, "topic": "m/first", "qos": 1, "publishTimeout": 60_000})
    flood = sink({**base, "topic": "m/flood", "qos": 0})
    second = sink({**base, "topic": "m/second", "qos": 1, "publishTimeout": 60_000})
    made = [first, flood, second]
    for s in made:
        s.open()
    assert broker.proc is not None
    outcome: dict[str, Any] = {}

    def write(name: str, s: MqttSink) -> None:
        try:
            s.write(rows(name))
            outcome[name] = "ok"
        except Exception as exc:  # noqa: BLE001
            outcome[name] = exc

    try:
        wait_for(lambda: all(s.status() == "connected" for s in made), "the sinks to connect")
        client = first._client
        assert isinstance(client, _PublishClient)
        os.kill(broker.proc.pid, signal.SIGSTOP)
        try:
            t1 = threading.Thread(target=write, args=("first", first))
            t1.start()
            wait_for(lambda: len(client._out_messages) == 1, "the first message in flight")
            (taken,) = client._out_messages
            gap = (taken - client._last_mid - 1) % 65_535  # QoS 0 messages that bring the id round to it
            flood.write(pa.RecordBatch.from_pylist([{"v": 0}] * gap))
            assert (client._last_mid % 65_535) + 1 == taken  # paho's next id would be the taken one
            t2 = threading.Thread(target=write, args=("second", second))
            t2.start()
            wait_for(lambda: len(client._out_messages) == 2, "the second message in flight")
            assert taken in client._out_messages and client._last_mid != taken
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
        t1.join(WAIT_S * 4)
        t2.join(WAIT_S * 4)
        assert outcome == {"first": "ok", "second": "ok"}
    finally:
        for s in made:
            s.close()


def test_a_refused_connection_fails_every_write_with_the_reason(tmp_path: Any):
    broker = Mosquitto(tmp_path / "auth")
    broker.config.write_text(broker.config.read_text().replace("allow_anonymous true", "allow_anonymous false"))
    broker.start()
    sinks = [sink({"server": broker.url, "topic": f"t/{i}", "publishTimeout": 200}) for i in range(3)]
    try:
        for s in sinks:
            s.open()
        wait_for(lambda: all(s.status() == "disconnected" for s in sinks), "the refusal")
        for s in sinks:
            with pytest.raises(OSError, match="the broker refused the connection: Not authorized"):
                s.write(rows(1))
        assert len(lanes_of(broker)) == 1
    finally:
        for s in sinks:
            s.close()
        broker.stop()
