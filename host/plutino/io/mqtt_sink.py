"""The ``mqtt`` sink's instance: it publishes what a rule emits (the plugin is in :mod:`.mqtt`).

One message per batch (a JSON array) or per row with ``sendSingle``, see :mod:`.sink_props`. A
topic containing ``{{`` is a template rendered per row (per batch without sendSingle). With
QoS 1 or 2 a write waits for the broker's acknowledgements (``publishTimeout``); a write while
disconnected, or one the broker does not acknowledge in time, fails so that the rule retries it.

Sinks that connect alike and name no ``clientid`` publish through one shared connection
(:mod:`.mqtt_sink_hub`), each with its own QoS, retained flag and acknowledgements; the sink's
status is its connection's.
"""

from __future__ import annotations

import logging
import time

import paho.mqtt.client as paho
import pyarrow as pa

from .gotemplate import Template, TemplateError
from .mqtt_connection import ClientBase, Connection, Status
from .mqtt_sink_hub import MAX_OUTSTANDING, SINK_HUB, PublishLane
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
        self._lane: PublishLane | None = None

    def open(self) -> None:
        self._status.set("connecting")
        self._lane = SINK_HUB.attach(self)

    def close(self) -> None:
        lane, self._lane = self._lane, None
        if lane is not None:
            SINK_HUB.detach(self, lane)
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
        lane = self._lane
        if lane is None:
            raise ConnectionError(f"{self.what}: the sink is not open")
        payloads = self.props.payloads(batch)
        if not payloads:
            return
        topics = self._topics(batch, len(payloads))
        client = lane.client
        if not client.is_connected() and not lane.wait_connected(min(self.timeout, 2.0)):
            why = f"; {lane.error}" if lane.error else ""
            raise ConnectionError(f"{self.what}: not connected to {self.conn.server}{why}; the batch will be retried")
        qos, retained = self.conn.qos, self.retained
        infos = [client.publish(t, p, qos, retained) for t, p in zip(topics, payloads, strict=True)]
        if qos == 0:
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
            except ValueError:  # MQTT_ERR_QUEUE_SIZE
                raise ConnectionError(
                    f"{self.what}: {MAX_OUTSTANDING} messages on the connection to {self.conn.server} already "
                    "await the broker's acknowledgement; the batch will be retried"
                ) from None
            except RuntimeError as exc:
                raise ConnectionError(f"{self.what}: publishing to {self.conn.server} failed: {exc}") from None
            if not info.is_published():
                raise TimeoutError(
                    f"{self.what}: the broker {self.conn.server} did not acknowledge the messages "
                    f"within {self.timeout:g} s; the batch will be retried"
                )

    def flush(self) -> None:
        pass


__all__ = ["MqttSink"]
