"""The ``mqtt`` source and sink (paho-mqtt 2), eKuiper's default connector.

Source: ``CREATE STREAM demo () WITH (DATASOURCE="sensors/+/temp", FORMAT="json")`` (TYPE
defaults to mqtt). It is a *bytes* source: every message becomes one ``payload`` value, and the
host decodes a whole batch of them by the stream's FORMAT (:func:`plutino.io.formats.decode`), as
it does for a native bytes source. Messages arrive on paho's network thread into a bounded
buffer; :meth:`MqttSource.next` hands out everything pending as one batch. paho's client is
used through :class:`_FastClient`, which takes the payloads of QoS 0 and 1 messages in bulk
(see there: it is most of what makes the source fast).

Sink: ``{"mqtt": {"server": "tcp://127.0.0.1:1883", "topic": "out", "qos": 1}}``; one message per
batch (a JSON array) or per row with ``sendSingle``, see :mod:`plutino.io.sink_props`. A topic
containing ``{{`` is a template rendered per row (per batch without sendSingle).

Connection: paho reconnects by itself (``reconnectMinDelay`` doubling up to
``reconnectMaxDelay``). The status is ``connecting`` until the first connection, ``connected``
once connected (the source: once its subscription is acknowledged, so "connected" means
messages flow), ``disconnected`` from a lost connection until the next one. With
``cleanSession: false`` and a fixed ``clientid`` the broker keeps the subscription and the
QoS 1/2 messages that arrive while the source is away (and across its own restart when it
persists them), and hands them over on reconnection.
"""

from __future__ import annotations

import collections
import logging
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

import paho.mqtt.client as paho
import pyarrow as pa
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
from plutino_contract.protocols import ConnectionStatus, Context

from .formats import PAYLOAD_SCHEMA, payload_batch
from .gotemplate import Template, TemplateError
from .options import RESERVED_SOURCE_KEYS, Options
from .sink_props import SinkProps, with_resend

VERSION = "1.0.0"
_log = logging.getLogger("plutino.io.mqtt")

MAX_BATCH = 10_000  # messages handed out by one next()
_PROTOCOLS = {
    "3.1": MQTTProtocolVersion.MQTTv31,
    "3.1.1": MQTTProtocolVersion.MQTTv311,
    "4": MQTTProtocolVersion.MQTTv311,
    "5": MQTTProtocolVersion.MQTTv5,
    "5.0": MQTTProtocolVersion.MQTTv5,
}
_SCHEMES = {
    "tcp": ("tcp", False, 1883),
    "mqtt": ("tcp", False, 1883),
    "ssl": ("tcp", True, 8883),
    "tls": ("tcp", True, 8883),
    "mqtts": ("tcp", True, 8883),
    "ws": ("websockets", False, 80),
    "wss": ("websockets", True, 443),
}
_CONNECTION_KEYS = {
    "server",
    "clientid",
    "username",
    "password",
    "protocolVersion",
    "cleanSession",
    "sessionExpiry",
    "keepAlive",
    "reconnectMinDelay",
    "reconnectMaxDelay",
    "certificationPath",
    "privateKeyPath",
    "rootCaPath",
    "insecureSkipVerify",
    "qos",
}


@dataclass(frozen=True)
class Connection:
    """Where and how to connect, checked; shared by the source and the sink."""

    server: str
    host: str
    port: int
    transport: str
    tls: bool
    client_id: str
    username: str | None
    password: str | None
    protocol: MQTTProtocolVersion
    clean: bool
    session_expiry: int
    keepalive: int
    reconnect_min: float
    reconnect_max: float
    qos: int
    cert: str | None
    key: str | None
    ca: str | None
    insecure: bool

    @classmethod
    def from_options(cls, opts: Options, what: str, context: Context) -> "Connection":
        server = opts.text("server", "tcp://127.0.0.1:1883") or "tcp://127.0.0.1:1883"
        url = urlsplit(server if "://" in server else f"tcp://{server}")
        if url.scheme not in _SCHEMES or not url.hostname:
            raise ValueError(
                f"{what}: server {server!r} is not a broker address; write "
                f"scheme://host:port with a scheme among {', '.join(_SCHEMES)}, e.g. tcp://127.0.0.1:1883"
            )
        transport, tls, default_port = _SCHEMES[url.scheme]
        try:
            port = url.port or default_port
        except ValueError:
            raise ValueError(f"{what}: the port in server {server!r} is not a number from 1 to 65535") from None
        version = str(opts.config.get("protocolVersion") or "3.1.1")
        if version not in _PROTOCOLS:
            raise opts.error("protocolVersion", f"one of {', '.join(repr(v) for v in _PROTOCOLS)}")
        clean = opts.flag("cleanSession", True)
        client_id = opts.text("clientid")
        if not clean and not client_id:
            raise ValueError(
                f"{what}: cleanSession false keeps a session at the broker under a client id, "
                "but no 'clientid' is set; set a fixed clientid"
            )
        if not client_id:
            rule = context.rule_id or "host"
            client_id = f"plutino-{rule}-{context.op_id or 'op'}-{uuid.uuid4().hex[:8]}"[:64]
        min_ms = opts.integer("reconnectMinDelay", 1000, minimum=1)
        max_ms = opts.integer("reconnectMaxDelay", 30000, minimum=min_ms)
        return cls(
            server=server,
            host=url.hostname,
            port=port,
            transport=transport,
            tls=tls,
            client_id=client_id,
            username=opts.text("username"),
            password=opts.text("password"),
            protocol=_PROTOCOLS[version],
            clean=clean,
            session_expiry=opts.integer("sessionExpiry", 0 if clean else 3600, minimum=0),
            keepalive=opts.integer("keepAlive", 60, minimum=1),
            reconnect_min=min_ms / 1000,
            reconnect_max=max_ms / 1000,
            qos=opts.integer("qos", 1, minimum=0, maximum=2),
            cert=opts.text("certificationPath"),
            key=opts.text("privateKeyPath"),
            ca=opts.text("rootCaPath"),
            insecure=opts.flag("insecureSkipVerify", False),
        )

    @property
    def v5(self) -> bool:
        return self.protocol == MQTTProtocolVersion.MQTTv5

    def client(self, cls: type[paho.Client] = paho.Client, **extra: Any) -> paho.Client:
        """A configured, not yet connected paho client (of ``cls``, given ``extra``)."""
        client = cls(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=None if self.v5 else self.clean,
            protocol=self.protocol,
            transport=self.transport,
            **extra,
        )  # type: ignore[arg-type]
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set(
                ca_certs=self.ca,
                certfile=self.cert,
                keyfile=self.key,
                cert_reqs=ssl.CERT_NONE if self.insecure else ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(self.insecure)
        client.reconnect_delay_set(self.reconnect_min, self.reconnect_max)  # type: ignore[arg-type]
        client.max_inflight_messages_set(256)
        return client

    def connect_async(self, client: paho.Client) -> None:
        if self.v5:
            props = Properties(PacketTypes.CONNECT)
            if self.session_expiry:
                props.SessionExpiryInterval = self.session_expiry
            client.connect_async(self.host, self.port, self.keepalive, clean_start=self.clean, properties=props)
        else:
            client.connect_async(self.host, self.port, self.keepalive)


_RECV_BYTES = 1 << 18  # one socket read of _FastClient
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
_PAHO_PRIVATE = ("_sock_recv", "_sock", "_in_packet", "_last_bytes_received", "_send_puback", "_protocol")


class _FastClient(paho.Client):
    """paho's client with a quicker way in for PUBLISH packets.

    paho reads each packet with three ``recv()`` calls after a ``select()``, then builds an
    ``MQTTMessage`` and runs its callback machinery: ~12 us a message in Python, which capped
    the source near 40k messages/s (bench/mqtt.py). This client reads the socket in large
    chunks and serves paho's reads from them; the complete QoS 0 and QoS 1 PUBLISH packets at
    the head of a chunk it takes itself, in a plain loop, handing their payloads to
    ``on_payloads`` in one call per chunk and acknowledging the QoS 1 ones with paho's own
    PUBACK. Everything else -- CONNACK, SUBACK, PINGRESP, QoS 2, a packet split between two
    reads, anything malformed -- is left to paho, which reads it from the same chunk, so the
    protocol (connection, subscription, keepalive, acknowledgements, errors) stays paho's.
    The topic is not looked at: the source's client has one subscription.

    This relies on a few of paho 2's private members (``_PAHO_PRIVATE``); :func:`_client`
    checks them and falls back to the plain client, with a warning, when a paho release lacks
    them."""

    def __init__(self, *args: Any, on_payloads: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_payloads = on_payloads
        self._rbuf = b""
        self._rpos = 0
        self._rsock: Any = None
        self._quickack_ok = _QUICKACK is not None

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rsock is not self._sock:  # a new connection: nothing left from the old one
            self._rbuf, self._rpos, self._rsock = b"", 0, self._sock
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(_RECV_BYTES)
            if not data:
                return data
            self._rbuf, self._rpos = data, 0
            self._quickack()
        out = self._rbuf[self._rpos: self._rpos + bufsize]
        self._rpos += len(out)
        return out

    def _quickack(self) -> None:
        """Acknowledge what was just read at once (Linux TCP_QUICKACK). A broker that leaves
        Nagle's algorithm on (mosquitto's default) sends its next small packets only when the
        previous ones are acknowledged; one large read acknowledges less often than paho's many
        small ones, and the kernel's delayed ACK then held messages back: p50 latency 11 ms
        instead of 0.6 ms at 20k msg/s (bench/mqtt.py)."""
        if self._quickack_ok:
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)  # type: ignore[union-attr]
            except (OSError, AttributeError):  # not a TCP socket (websockets), or not Linux
                self._quickack_ok = False

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)  # reads the socket when the chunk is used up
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._sock is not None and self._rpos < len(self._rbuf):
            if self._in_packet["command"] == 0:  # paho is between packets
                self._take_publishes()
                if self._rpos >= len(self._rbuf):
                    break
            rc = super().loop_read(max_packets)  # a packet left to paho
        return rc

    def _take_publishes(self) -> None:
        buf, pos, end = self._rbuf, self._rpos, len(self._rbuf)
        v5 = self._protocol == MQTTProtocolVersion.MQTTv5
        payloads: list[bytes] = []
        acks: list[int] = []
        while pos < end:
            head = buf[pos]
            qos = (head >> 1) & 3
            if head >> 4 != 3 or qos > 1:  # not a PUBLISH, or QoS 2 (or malformed): paho's
                break
            length, at = _varint(buf, pos + 1, end)
            stop = at + length
            if length < 0 or stop > end or at + 2 > stop:  # split between reads, or malformed
                break
            p = at + 2 + ((buf[at] << 8) | buf[at + 1])  # past the topic
            mid = 0
            if qos:
                if p + 2 > stop:
                    break
                mid = (buf[p] << 8) | buf[p + 1]
                p += 2
            if v5:
                props, p = _varint(buf, p, stop)
                if props < 0:
                    break
                p += props
            if p > stop or (p == at + 2 and not v5):  # past the end, or an empty topic (MQTT 3)
                break
            payloads.append(buf[p:stop])
            if qos:
                acks.append(mid)
            pos = stop
        self._rpos = pos
        if payloads:
            self._last_bytes_received = time.monotonic()  # paho's keepalive clock
            self._on_payloads(payloads)
            for mid in acks:
                self._send_puback(mid)


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """MQTT's variable byte integer at ``buf[pos]``: (value, position after it), or (-1, pos)
    when it runs past ``end`` or past 4 bytes."""
    value = shift = 0
    for i in range(pos, min(end, pos + 4)):
        b = buf[i]
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i + 1
        shift += 7
    return -1, pos


def _client(conn: "Connection", on_payloads: Any) -> paho.Client:
    """The source's client: a :class:`_FastClient` when this paho has what it relies on."""
    client = conn.client(_FastClient, on_payloads=on_payloads)
    missing = [m for m in _PAHO_PRIVATE if not hasattr(client, m)]
    if not missing and isinstance(client._in_packet, dict) and "command" in client._in_packet:
        return client
    _log.warning("paho-mqtt %s lacks %s: the mqtt source reads through paho's plain (slower) path",
                 getattr(paho, "__version__", "?"), ", ".join(missing) or "_in_packet['command']")
    return conn.client()


class _Status:
    """The connection status and its recent transitions (for the rule status and tests)."""

    def __init__(self) -> None:
        self.value: ConnectionStatus = "connecting"
        self.history: collections.deque[tuple[float, ConnectionStatus]] = collections.deque(maxlen=64)
        self.history.append((time.time(), "connecting"))

    def set(self, value: ConnectionStatus) -> None:
        if value != self.value:
            self.value = value
            self.history.append((time.time(), value))


class _Client:
    """What the mqtt source and sink share: one paho client and its connection status."""

    _status: _Status
    _client: paho.Client | None

    def status(self) -> ConnectionStatus:
        return self._status.value

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.disconnect()
            finally:
                client.loop_stop()
        self._status.set("disconnected")


# -- source --------------------------------------------------------------------------------


class MqttSource(_Client):
    def __init__(self, conn: Connection, topic: str, buffer: int, what: str) -> None:
        self.conn = conn
        self.topic = topic
        self.what = what
        self.capacity = buffer
        self.dropped = 0
        self.received = 0
        self._status = _Status()
        self._pending: collections.deque[bytes] = collections.deque()
        self._cond = threading.Condition()
        self._error: str | None = None
        self._reported: str | None = None
        self._client: paho.Client | None = None

    @property
    def status_history(self) -> list[ConnectionStatus]:
        return [s for _, s in self._status.history]

    def schema(self) -> pa.Schema:
        return PAYLOAD_SCHEMA

    def open(self) -> None:
        client = _client(self.conn, self._on_payloads)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        self._client = client
        self._status.set("connecting")
        self.conn.connect_async(client)
        client.loop_start()

    # paho's network thread
    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._fail(
                f"the broker {self.conn.server} refused the connection: {reason}; check username/password and clientid"
            )
            return
        client.subscribe(self.topic, self.conn.qos)

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            self._fail(
                f"the broker {self.conn.server} refused the subscription to {self.topic!r}: {failed[0]}; "
                "check the topic and the broker's access rules"
            )
            return
        with self._cond:
            self._error = self._reported = None  # a failure before this one is over
        self._status.set("connected")
        _log.info("%s: subscribed to %r on %s", self.what, self.topic, self.conn.server)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._status.set("disconnected")
        if self._client is not None:  # not our own close()
            _log.warning("%s: disconnected from %s (%s); reconnecting", self.what, self.conn.server, reason)

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        self._fail(f"cannot connect to {self.conn.server}; retrying (is the broker running?)")

    def _fail(self, message: str) -> None:
        self._status.set("disconnected")
        with self._cond:
            self._error = message

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._on_payloads([bytes(message.payload)])

    def _on_payloads(self, payloads: list[bytes]) -> None:
        with self._cond:
            pending = self._pending
            pending.extend(payloads)
            self.received += len(payloads)
            over = len(pending) - self.capacity
            if over > 0:
                for _ in range(over):
                    pending.popleft()
                before, self.dropped = self.dropped, self.dropped + over
                if before == 0 or before // 10_000 != self.dropped // 10_000:
                    _log.error(
                        "%s: %d messages dropped: the rule reads slower than they arrive (bufferLength %d)",
                        self.what,
                        self.dropped,
                        self.capacity,
                    )
            self._cond.notify()

    # the rule's source thread
    def next(self, timeout: float) -> pa.RecordBatch | None:
        with self._cond:
            if not self._pending:
                self._cond.wait(timeout)
            if not self._pending:
                if self._error is not None and self._error != self._reported:
                    self._reported = self._error
                    raise ConnectionError(f"{self.what}: {self._error}")
                return None
            if len(self._pending) <= MAX_BATCH:
                payloads = list(self._pending)
                self._pending.clear()
            else:
                payloads = [self._pending.popleft() for _ in range(MAX_BATCH)]
        return payload_batch(payloads)


class MqttSourcePlugin:
    """``CREATE STREAM s () WITH (TYPE="mqtt", DATASOURCE="topic", CONF_KEY="...")``."""

    name = "mqtt"
    version = VERSION
    kind = "source"
    builtin = True

    def create(self, config: Mapping[str, Any], context: Context) -> MqttSource:
        what = "mqtt source"
        opts = Options(
            what,
            config,
            _CONNECTION_KEYS | {"datasource", "bufferLength"},
            '{"server": "tcp://127.0.0.1:1883", "qos": 1}',
            ignore=RESERVED_SOURCE_KEYS,
        )
        topic = opts.text("datasource")
        if not topic:
            raise ValueError(
                'mqtt source: no topic; give the stream DATASOURCE="<topic>", e.g. '
                'CREATE STREAM demo () WITH (DATASOURCE="sensors/#", FORMAT="json")'
            )
        conn = Connection.from_options(opts, what, context)
        buffer = opts.integer("bufferLength", 102_400, minimum=1)
        return MqttSource(conn, topic, buffer, f"mqtt source {topic!r}")


# -- sink ----------------------------------------------------------------------------------


class MqttSink(_Client):
    def __init__(
        self, conn: Connection, topic: str, props: SinkProps, retained: bool, timeout: float, what: str
    ) -> None:
        self.conn = conn
        self.topic = topic
        self.topic_template = Template(topic) if "{{" in topic else None
        self.props = props
        self.retained = retained
        self.timeout = timeout
        self.what = what
        self._status = _Status()
        self._client: paho.Client | None = None

    def open(self) -> None:
        client = self.conn.client()
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = lambda c, u: self._status.set("disconnected")
        self._client = client
        self._status.set("connecting")
        self.conn.connect_async(client)
        client.loop_start()

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._status.set("disconnected")
            _log.error("%s: the broker %s refused the connection: %s", self.what, self.conn.server, reason)
        else:
            self._status.set("connected")

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._status.set("disconnected")

    def _topics(self, batch: pa.RecordBatch, count: int) -> list[str]:
        if self.topic_template is None:
            return [self.topic] * count
        rows = self.props.select(batch).to_pylist()
        try:
            if self.props.send_single:
                return [self.topic_template.render(row) for row in rows]
            return [self.topic_template.render(rows)] * count
        except TemplateError as exc:
            raise ValueError(f"{self.what}: topic: {exc}") from None

    def write(self, batch: pa.RecordBatch) -> None:
        client = self._client
        if client is None:
            raise ConnectionError(f"{self.what}: the sink is not open")
        payloads = self.props.payloads(batch)
        if not payloads:
            return
        topics = self._topics(batch, len(payloads))
        if not client.is_connected():
            if not self._wait_connected():
                raise ConnectionError(f"{self.what}: not connected to {self.conn.server}; the batch will be retried")
        infos = [client.publish(t, p, self.conn.qos, self.retained) for t, p in zip(topics, payloads, strict=True)]
        if self.conn.qos == 0:
            failed = [i for i in infos if i.rc != paho.MQTT_ERR_SUCCESS]
            if failed:
                raise ConnectionError(
                    f"{self.what}: {len(failed)} of {len(infos)} messages not sent: {paho.error_string(failed[0].rc)}"
                )
            return
        deadline = time.monotonic() + self.timeout
        for info in infos:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as exc:
                raise ConnectionError(f"{self.what}: publishing to {self.conn.server} failed: {exc}") from None
            if not info.is_published():
                raise TimeoutError(
                    f"{self.what}: the broker {self.conn.server} did not acknowledge the messages "
                    f"within {self.timeout:g} s; the batch will be retried"
                )

    def _wait_connected(self) -> bool:
        """Give a connection being (re)made a moment (at most the publish timeout)."""
        deadline = time.monotonic() + min(self.timeout, 2.0)
        while time.monotonic() < deadline:
            if self._client is not None and self._client.is_connected():
                return True
            time.sleep(0.01)
        return False

    def flush(self) -> None:
        pass


class MqttSinkPlugin:
    """Rule action ``{"mqtt": {"server": "tcp://127.0.0.1:1883", "topic": "result", "qos": 1}}``."""

    name = "mqtt"
    version = VERSION
    kind = "sink"
    handles_sink_props = True
    builtin = True

    def create(self, config: Mapping[str, Any], context: Context) -> Any:
        what = "mqtt sink"
        props, rest = SinkProps.split(what, config)
        opts = Options(
            what,
            rest,
            _CONNECTION_KEYS | {"topic", "retained", "publishTimeout"},
            '{"mqtt": {"server": "tcp://127.0.0.1:1883", "topic": "result", "qos": 1}}',
        )
        topic = opts.text("topic", required=True)
        assert topic is not None
        if "{{" in topic:
            try:
                Template(topic)
            except TemplateError as exc:
                raise ValueError(f"{what}: topic: {exc}") from None
        elif "+" in topic or "#" in topic:
            raise opts.error("topic", "a topic without the wildcards + and #")
        conn = Connection.from_options(opts, what, context)
        timeout = opts.integer("publishTimeout", 5000, minimum=1) / 1000
        sink = MqttSink(conn, topic, props, opts.flag("retained", False), timeout, f"mqtt sink {topic!r}")
        return with_resend(sink, props, f"mqtt sink {topic!r}")


__all__ = ["Connection", "MqttSink", "MqttSinkPlugin", "MqttSource", "MqttSourcePlugin"]
