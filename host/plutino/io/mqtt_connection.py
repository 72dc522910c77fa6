"""Connecting to an MQTT broker: the options the mqtt source and sink share, and their status.

:class:`Connection` checks the connection options once (server address, client id, session,
TLS, reconnect delays, QoS) and makes paho clients from them; :class:`ClientBase` is the part
of the source and the sink that holds the client and reports its status (``connecting`` until
the first connection, ``connected``, ``disconnected`` from a lost connection until the next).
"""

from __future__ import annotations

import collections
import ssl
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from plutino_contract.protocols import ConnectionStatus, Context

from .options import Options

VERSION = "1.0.0"  # of the mqtt source and sink

_PROTOCOLS = {
    "3.1": MQTTProtocolVersion.MQTTv31,
    "3.1.1": MQTTProtocolVersion.MQTTv311,
    "4": MQTTProtocolVersion.MQTTv311,
    "5": MQTTProtocolVersion.MQTTv5,
    "5.0": MQTTProtocolVersion.MQTTv5,
}
Transport = Literal["tcp", "websockets", "unix"]
_SCHEMES: dict[str, tuple[Transport, bool, int]] = {
    "tcp": ("tcp", False, 1883),
    "mqtt": ("tcp", False, 1883),
    "ssl": ("tcp", True, 8883),
    "tls": ("tcp", True, 8883),
    "mqtts": ("tcp", True, 8883),
    "ws": ("websockets", False, 80),
    "wss": ("websockets", True, 443),
}
CONNECTION_KEYS = {
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
    transport: Transport
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
    explicit_id: bool = False  # the client id was given (not generated): the connection is this client's own
    share_takeover: bool = True  # a persistent shared subscription takes over dead members' sessions (.mqtt_takeover)

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
        explicit_id = bool(client_id)
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
            explicit_id=explicit_id,
            share_takeover=opts.flag("shareTakeover", True),
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
        )
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


class Status:
    """The connection status and its recent transitions (for the rule status and tests)."""

    def __init__(self) -> None:
        self.value: ConnectionStatus = "connecting"
        self.history: collections.deque[tuple[float, ConnectionStatus]] = collections.deque(maxlen=64)
        self.history.append((time.time(), "connecting"))

    def set(self, value: ConnectionStatus) -> None:
        if value != self.value:
            self.value = value
            self.history.append((time.time(), value))


class ClientBase:
    """What the mqtt source and sink share: their place on a shared connection (a *lane* of
    :mod:`.mqtt_hub` or :mod:`.mqtt_sink_hub`, None while closed) and their own status."""

    _status: Status
    _lane: Any

    @property
    def _client(self) -> paho.Client | None:
        lane = self._lane
        return None if lane is None else lane.client

    @property
    def status_history(self) -> list[ConnectionStatus]:
        return [s for _, s in self._status.history]

    def status(self) -> ConnectionStatus:
        return self._status.value


__all__ = ["CONNECTION_KEYS", "ClientBase", "Connection", "Status", "VERSION"]
