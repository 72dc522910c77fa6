"""The ``mqtt`` sink's instance: it publishes what a rule emits (the plugin is in :mod:`.mqtt`).

One message per batch (a JSON array) or per row with ``sendSingle``, see :mod:`.sink_props`. A
topic containing ``{{`` is a template rendered per row (per batch without sendSingle). With
QoS 1 or 2 a write waits for the broker's acknowledgements (``publishTimeout``); a write while
disconnected, or one the broker does not acknowledge in time, fails so that the rule retries it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import paho.mqtt.client as paho
import pyarrow as pa

from .gotemplate import Template, TemplateError
from .mqtt_connection import ClientBase, Connection, Status
from .sink_props import SinkProps

_log = logging.getLogger("plutino.io.mqtt")


class MqttSink(ClientBase):
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
        self._status = Status()
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


__all__ = ["MqttSink"]
