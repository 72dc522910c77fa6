"""The ``mqtt`` source's instance: the messages of one subscription, handed out in batches.

The plugin, which checks the stream's options, is in :mod:`.mqtt`. A *bytes* source: every
message becomes one ``payload`` value, and the host decodes a whole batch of them by the
stream's FORMAT. Messages arrive on paho's network thread (through
:class:`~.mqtt_fast_client._FastClient`, in bulk) into a bounded buffer;
:meth:`MqttSource.next` hands out everything pending as one batch. When the rule reads slower
than messages arrive, the oldest are dropped and counted. "connected" means the subscription
was acknowledged, so messages flow.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any

import paho.mqtt.client as paho
import pyarrow as pa
from plutino_contract.protocols import ConnectionStatus

from .formats import PAYLOAD_SCHEMA, payload_batch
from .mqtt_connection import ClientBase, Connection, Status
from .mqtt_fast_client import source_client

_log = logging.getLogger("plutino.io.mqtt")

MAX_BATCH = 10_000  # messages handed out by one next()


class MqttSource(ClientBase):
    def __init__(self, conn: Connection, topic: str, buffer: int, what: str) -> None:
        self.conn = conn
        self.topic = topic
        self.what = what
        self.capacity = buffer
        self.dropped = 0
        self.received = 0
        self._status = Status()
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
        client = source_client(self.conn, self._on_payloads)
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


__all__ = ["MAX_BATCH", "MqttSource"]
