"""One MQTT connection shared by many sinks: the process's :data:`SINK_HUB`.

As for the sources (:mod:`.mqtt_hub`): a paho client costs a TCP connection, three file
descriptors and a network thread, and paho's ``select()`` cannot watch descriptors >= 1024, so
one client per sink stopped a process at a few hundred rules with an mqtt action. Sinks that
connect alike -- same server, credentials, TLS, protocol, keepalive, session and reconnect
options -- and name no ``clientid`` publish through one connection (a :class:`PublishLane`),
made when the first of them opens and closed with the last; QoS 2 sinks are on one of their
own, which keeps fewer messages in flight (:data:`QOS2_INFLIGHT`). A sink with a ``clientid`` has a
lane of its own, keyed by that client id (a client id is one session at the broker; two sinks
with the same id and options share it rather than take the connection from each other). Sink
lanes are apart from source lanes: a rule's source and sink do not share a connection.

Each sink publishes with its own QoS and retained flag, and waits only for the
acknowledgements of its own messages (paho's ``MQTTMessageInfo``, one per message id). Message
ids are 16 bits and now shared by every sink of a lane: :class:`_PublishClient` skips the ids
still awaiting an acknowledgement, and a lane holds at most :data:`MAX_OUTSTANDING` QoS 1/2
messages (a publish past it fails, and the rule retries its batch), so that an id is never
given to two messages at once. The lane tells each sink the connection's status
(``connecting``, ``connected``, ``disconnected``); paho reconnects by itself.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from typing import Any

import paho.mqtt.client as paho

from plutino_contract.protocols import ConnectionStatus

from .mqtt_connection import Connection

_log = logging.getLogger("plutino.io.mqtt")

#: QoS 1/2 messages a lane holds until the broker acknowledges them (below 65535 message ids).
MAX_OUTSTANDING = 60_000
#: QoS 1/2 messages in flight at once on a lane with QoS 2 sinks: mosquitto takes at most its
#: ``max_inflight_messages`` (20 by default) unreleased QoS 2 messages from a client, and over
#: MQTT 3.1.1 it acknowledges and *drops* the ones past it (QoS 1 ones too, while QoS 2 ones hold
#: the quota), which paho cannot tell. QoS 0/1 sinks are on lanes of their own, at paho's 256.
QOS2_INFLIGHT = 20
_PAHO_PRIVATE = ("_mid_generate", "_mid_generate_mutex", "_last_mid", "_out_messages", "_max_inflight_messages")


class _PublishClient(paho.Client):
    """paho's client whose message ids skip those still awaiting an acknowledgement.

    paho counts ids round from 1 to 65535 whatever is in flight, and refuses a QoS 1/2 message
    whose id is still taken (``MQTT_ERR_QUEUE_SIZE``): with the ids of many sinks' messages --
    QoS 0 ones included -- going round one counter, an old unacknowledged message would fail an
    unrelated sink's write. Relies on paho 2's private ``_PAHO_PRIVATE`` members
    (:func:`publish_client` checks them)."""

    def _mid_generate(self) -> int:
        with self._mid_generate_mutex:
            taken = self._out_messages
            mid = self._last_mid
            for _ in range(65_535):
                mid = mid + 1 if mid < 65_535 else 1
                if mid not in taken:
                    break
            self._last_mid = mid
            return mid


def _has_private() -> bool:
    probe = paho.Client(paho.CallbackAPIVersion.VERSION2)
    return all(hasattr(probe, name) for name in _PAHO_PRIVATE)


_PRIVATE_OK = _has_private()
if not _PRIVATE_OK:  # pragma: no cover - another paho release
    _log.warning("mqtt: this paho-mqtt lacks %s; sinks sharing a connection use its plain client", _PAHO_PRIVATE)


def publish_client(conn: Connection) -> paho.Client:
    client = conn.client(_PublishClient if _PRIVATE_OK else paho.Client)
    client.max_queued_messages_set(MAX_OUTSTANDING)
    return client


class PublishLane:
    """One connection to a broker and the sinks publishing through it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sinks: list[Any] = []
        self.state: ConnectionStatus = "connecting"
        #: Why the connection is not usable beyond "not connected" (refused, descriptor too high).
        self.error: str | None = None
        self._cond = threading.Condition()
        self._closing = False
        client = publish_client(conn)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_socket_open = self._on_socket_open
        self.client: paho.Client = client

    def start(self) -> None:
        self.conn.connect_async(self.client)
        self.client.loop_start()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    # -- sinks come and go (the hub's lock held) -----------------------------------------

    def attach(self, sink: Any) -> None:
        with self._cond:
            if sink.conn.qos == 2 and self.client._max_inflight_messages > QOS2_INFLIGHT:
                # paho's setter refuses a connected client (for a change to or from 0, "unlimited"):
                # lowering it only holds back the next messages until fewer are in flight
                self.client._max_inflight_messages = QOS2_INFLIGHT
            self.sinks.append(sink)
            sink._status.set(self.state)

    def detach(self, sink: Any) -> bool:
        """Remove ``sink``; True when it was the last one (the caller then closes the lane)."""
        with self._cond:
            if sink in self.sinks:
                self.sinks.remove(sink)
            self._closing = not self.sinks
            return self._closing

    # -- the sinks' threads ----------------------------------------------------------------

    def wait_connected(self, timeout: float) -> bool:
        """Whether the connection is up, giving one being (re)made at most ``timeout`` s."""
        if self.client.is_connected():
            return True
        with self._cond:
            self._cond.wait_for(lambda: self._closing or self.client.is_connected(), timeout)
        return self.client.is_connected()

    # -- the connection (paho's thread) ----------------------------------------------------

    def _set(self, state: ConnectionStatus, error: str | None) -> list[Any]:
        with self._cond:
            changed = state != self.state or error != self.error
            self.state, self.error = state, error
            sinks = list(self.sinks)
            for sink in sinks:
                sink._status.set(state)
            self._cond.notify_all()
        return sinks if changed else []

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            error = f"the broker refused the connection: {reason}; check username/password and clientid"
            if self._set("disconnected", error):
                _log.error("mqtt: %s: %s", self.conn.server, error)
        elif self._set("connected", None):
            _log.info("mqtt: sinks connected to %s (%d sinks)", self.conn.server, len(self.sinks))

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        error = self.error if self.state != "connected" else None  # a refusal stays the reason
        sinks = self._set("disconnected", error)
        if sinks and not self._closing:
            _log.warning("mqtt: sinks disconnected from %s (%s); reconnecting (%d sinks)",
                         self.conn.server, reason, len(sinks))

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        if self._set("disconnected", None) and not self._closing:
            _log.warning("mqtt: sinks cannot connect to %s; retrying (is the broker running?)", self.conn.server)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        """paho watches its socket with select(), which cannot watch descriptors >= 1024."""
        fd = sock.fileno() if hasattr(sock, "fileno") else -1
        if fd >= 1024:
            error = (f"the connection got file descriptor {fd}, which paho-mqtt's select() cannot watch "
                     "(>= 1024): this process holds too many files or connections")
            if self._set("disconnected", error):
                _log.error("mqtt: %s: %s", self.conn.server, error)


class SinkHub:
    """The publishing lanes of a process, by how they connect."""

    def __init__(self) -> None:
        self._lanes: dict[Connection, PublishLane] = {}
        self._lock = threading.Lock()

    def attach(self, sink: Any) -> PublishLane:
        """Put ``sink`` (its ``conn``) on the lane of its connection options, made if need be."""
        conn: Connection = sink.conn
        own = conn.explicit_id
        # QoS 2 sinks apart (QOS2_INFLIGHT); but one lane for a client id, whatever the QoS
        qos = 2 if conn.qos == 2 and not own else 0
        key = dataclasses.replace(conn, qos=qos, client_id=conn.client_id if own else "")
        with self._lock:
            lane = self._lanes.get(key)
            if lane is None:
                client_id = conn.client_id if own else f"plutino-sink-{uuid.uuid4().hex[:16]}"
                lane = self._lanes[key] = PublishLane(dataclasses.replace(key, client_id=client_id))
                lane.attach(sink)
                lane.start()
            else:
                lane.attach(sink)
        return lane

    def detach(self, sink: Any, lane: PublishLane) -> None:
        """Take ``sink`` off ``lane``; close the lane when it was the last."""
        with self._lock:
            last = lane.detach(sink)
            if last:
                for key, held in list(self._lanes.items()):
                    if held is lane:
                        del self._lanes[key]
        if last:
            lane.close()

    def lanes(self) -> list[PublishLane]:
        """Every open lane (for tests and metrics)."""
        with self._lock:
            return list(self._lanes.values())


#: The process's sink hub, shared by every mqtt sink.
SINK_HUB = SinkHub()

__all__ = ["MAX_OUTSTANDING", "PublishLane", "QOS2_INFLIGHT", "SINK_HUB", "SinkHub"]
