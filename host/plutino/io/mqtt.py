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
containing ``{{`` is a template rendered per row (per batch without sendSingle). Sinks that
connect alike and name no ``clientid`` publish through one shared connection
(:mod:`.mqtt_sink_hub`), closed with the last of them; a ``clientid`` gets a connection of its own.

Shared subscription: ``CREATE STREAM s () WITH (DATASOURCE="t/#", SHARE_GROUP="g1")``, or as
eKuiper users write it, ``DATASOURCE="$share/g1/t/#"`` (the same thing): the source subscribes
``$share/g1/t/#``, and the broker hands each message of ``t/#`` to one member of group ``g1``,
so hosts running the same stream split its messages (:mod:`.mqtt_topics`, docs/io.md). With
persistent sessions, a surviving host takes over the session of a member that died, and gives
it back when that member returns (:mod:`.mqtt_takeover`; ``shareTakeover: false`` turns it off).

Connection: sources that connect alike share one connection, each being one subscription on
it (:mod:`.mqtt_hub`; a ``clientid`` or a persistent session gets a connection of its own).
paho reconnects by itself (``reconnectMinDelay`` doubling up to ``reconnectMaxDelay``), and the
hub subscribes again to every filter. A source's status is ``connecting`` until its
subscription is acknowledged (so "connected" means messages flow), ``disconnected`` from a lost
connection until the next subscription. With ``cleanSession: false`` and a fixed ``clientid``
the broker keeps the subscription and the QoS 1/2 messages that arrive while the source is away
(and across its own restart when it persists them), and the source acknowledges a message only
when the engine says the rules delivered it (:meth:`MqttSource.take_ack`, :mod:`.mqtt_acks`).

This module holds the two plugins, which check a stream's or an action's options and create
the instances; the parts are :mod:`.mqtt_connection` (the connection options and status both
share), :mod:`.mqtt_fast_client` (the source's quick read path), :mod:`.mqtt_source` and
:mod:`.mqtt_sink` (the instances), :mod:`.mqtt_hub` and :mod:`.mqtt_sink_hub` (the shared
connections).
"""

from __future__ import annotations

from typing import Any, Mapping

from plutino_contract.protocols import Context

from .gotemplate import Template, TemplateError
from .mqtt_connection import CONNECTION_KEYS, VERSION, ClientBase, Connection, Status  # noqa: F401
from .mqtt_fast_client import _FastClient, source_client, varint  # noqa: F401  (_FastClient: bench/mqtt.py)
from .mqtt_hub import HUB  # noqa: F401
from .mqtt_sink import MqttSink
from .mqtt_sink_hub import SINK_HUB  # noqa: F401
from .mqtt_source import MAX_BATCH, MqttSource  # noqa: F401
from .mqtt_topics import SHARE_FIX, share_problem
from .options import RESERVED_SOURCE_KEYS, Options
from .sink_props import SinkProps, with_resend


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
            CONNECTION_KEYS | {"datasource", "bufferLength", "shareTakeover"},
            '{"server": "tcp://127.0.0.1:1883", "qos": 1}',
            ignore=RESERVED_SOURCE_KEYS,
        )
        topic = opts.text("datasource")
        if not topic:
            raise ValueError(
                'mqtt source: no topic; give the stream DATASOURCE="<topic>", e.g. '
                'CREATE STREAM demo () WITH (DATASOURCE="sensors/#", FORMAT="json")'
            )
        problem = share_problem(topic)
        if problem is not None:
            raise ValueError(f"mqtt source: {problem}; {SHARE_FIX}")
        conn = Connection.from_options(opts, what, context)
        buffer = opts.integer("bufferLength", 102_400, minimum=1)
        return MqttSource(conn, topic, buffer, f"mqtt source {topic!r}")


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
            CONNECTION_KEYS | {"topic", "retained", "publishTimeout"},
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
