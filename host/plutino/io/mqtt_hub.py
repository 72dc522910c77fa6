"""One MQTT connection shared by many sources: the process's :data:`HUB`.

A paho client costs a TCP connection, three file descriptors and a network thread, and paho
watches its socket with ``select()``, which cannot watch descriptors >= 1024: with one client
per source a process stopped at ~336 sources, the later ones staying ``connecting`` for ever.
So sources that connect alike -- same server, credentials, TLS, protocol, keepalive, session
options -- share one connection (a :class:`Lane`), each being one subscription on it: the
subscription is made when the source opens and removed when it closes, the connection is
closed when its last source goes, and on every (re)connection the lane subscribes again to
every filter of its sources. The lane's client routes each message by its topic to the sources
whose filter matches (:class:`~.mqtt_fast_client.Route`).

Filters that could both match one topic (``a/#`` and ``a/+/b``) go to different lanes: a
broker may send one copy of a message per matching subscription (mosquitto 2 does), copies
MQTT 3.1.1 cannot tell apart, which would reach each source twice. Identical filters share one
subscription: every source of it gets every message. A shared subscription
(``$share/<group>/<filter>``, :mod:`.mqtt_topics`) is matched and compared by its ``<filter>``,
since its messages come with their own topics: ``$share/g1/t/#`` and ``t/#``, or
``$share/g1/t`` and ``$share/g2/t``, go to different lanes (the broker may send one copy for
each), while two sources of ``$share/g1/t/#`` share one subscription, so one member of the
group.

A source with its own ``clientid``, or a persistent session (``cleanSession: false``, which
the broker identifies by the client id), has a lane of its own, keyed by that client id (two
sources with the same client id and options share it rather than take the connection from
each other). A persistent lane acknowledges messages once the rules are done with them
(:mod:`.mqtt_acks`), and keeps its subscriptions at the broker when it closes, so that the
broker keeps the session's messages until the source comes back. A persistent lane whose
subscriptions are all in one share group also says it is alive in the group, and takes over the
session of a member that died (:mod:`.mqtt_takeover`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from typing import Any

import paho.mqtt.client as paho

from .mqtt_acks import AckQueue, settle_acks
from .mqtt_connection import Connection
from .mqtt_fast_client import Route, source_client
from .mqtt_takeover import Takeover, takeover_for
from .mqtt_topics import is_wildcard, matches, overlap, topic_of

_log = logging.getLogger("plutino.io.mqtt")

SUBSCRIBE_AT_ONCE = 100  # filters per SUBSCRIBE packet when a lane (re)subscribes to all of them


class Lane:
    """One connection to a broker and the sources (subscriptions) on it."""

    def __init__(self, conn: Connection, persistent: bool) -> None:
        self.conn = conn
        self.persistent = persistent
        self.acks = AckQueue() if persistent else None
        self.sources: dict[str, list[Any]] = {}  # subscription filter -> its sources, in attach order
        self._wildcards: dict[str, str] = {}  # a subscription with a wildcard -> the filter topics match
        self._plain: dict[str, list[str]] = {}  # a topic -> the subscriptions without a wildcard matching it
        self._lock = threading.RLock()
        self._subacks: dict[int, list[str]] = {}  # SUBSCRIBE packet id -> its filters
        self._closing = False
        self.takeover: Takeover | None = None  # a persistent shared subscription's (.mqtt_takeover)
        client = source_client(conn, self.route_miss, self.acks)
        if client is None:  # a paho without what _FastClient needs: acknowledged on read
            client, self.acks = conn.client(), None
        self.client: paho.Client = client
        if self.acks is not None:
            self.acks.client = client
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        client.on_socket_open = self._on_socket_open

    def start(self) -> None:
        """Connect (in paho's thread), once the first source is attached: a persistent session's
        broker sends the messages it kept right after the connection, and they need a source.
        A persistent shared subscription registers its presence in its group first (its will)."""
        if self.persistent and self.conn.share_takeover:
            self.takeover = takeover_for(self)
        self.conn.connect_async(self.client)
        self.client.loop_start()

    # -- sources come and go (any thread; the hub's lock held) --------------------------

    def can_take(self, topic_filter: str) -> bool:
        """Whether a source of ``topic_filter`` can join without overlapping another filter."""
        with self._lock:
            if topic_filter in self.sources:
                return True
            match = topic_of(topic_filter)
            if is_wildcard(match):
                return not any(overlap(match, topic_of(f)) for f in self.sources)
            return match not in self._plain and not any(matches(w, match) for w in self._wildcards.values())

    def attach(self, source: Any) -> None:
        with self._lock:
            topic_filter = source.topic
            if topic_filter not in self.sources:
                match = topic_of(topic_filter)
                if is_wildcard(match):
                    self._wildcards[topic_filter] = match
                else:
                    self._plain.setdefault(match, []).append(topic_filter)
            self.sources.setdefault(topic_filter, []).append(source)
            self._forget_routes()
            if self.client.is_connected():
                self._subscribe([topic_filter])
        if self.takeover is not None:
            self.takeover.changed()

    def detach(self, source: Any) -> bool:
        """Remove ``source``; True when it was the last one (the caller then closes the lane)."""
        with self._lock:
            topic_filter = source.topic
            subs = self.sources.get(topic_filter, [])
            if source in subs:
                subs.remove(source)
            last = not any(self.sources.values())
            if not subs and self.sources.pop(topic_filter, None) is not None:
                self._forget_filter(topic_filter)
                if not last or not self.persistent:  # a persistent session keeps it for the source's return
                    self.client.unsubscribe(topic_filter)
            self._forget_routes()
            self._closing = last
        if self.takeover is not None and not last:
            self.takeover.changed()
        return last

    def _forget_filter(self, topic_filter: str) -> None:
        """``topic_filter`` has no source any more (lock held)."""
        if self._wildcards.pop(topic_filter, None) is None:
            match = topic_of(topic_filter)
            plain = self._plain.get(match, [])
            if topic_filter in plain:
                plain.remove(topic_filter)
            if not plain:
                self._plain.pop(match, None)

    def close(self) -> None:
        if self.takeover is not None:
            self.takeover.close()  # the sessions it took over first, then "gone" for this one
        if self.acks is not None:
            settle_acks(self.client)
            self.acks.client = None  # what the rules did not finish is not acknowledged: sent again
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def _forget_routes(self) -> None:
        forget = getattr(self.client, "forget_routes", None)
        if forget is not None:
            forget()
        if self.takeover is not None:
            self.takeover.forget_routes()

    def _subscribe(self, filters: list[str]) -> None:
        """SUBSCRIBE to ``filters`` at the highest QoS their sources ask for (lock held)."""
        for i in range(0, len(filters), SUBSCRIBE_AT_ONCE):
            part = filters[i: i + SUBSCRIBE_AT_ONCE]
            wanted = [(f, max(s.conn.qos for s in self.sources[f])) for f in part]
            rc, mid = self.client.subscribe(wanted)
            if rc == paho.MQTT_ERR_SUCCESS and mid is not None:
                self._subacks[mid] = part

    def filters(self) -> list[str]:
        """This lane's subscription filters, sorted."""
        with self._lock:
            return sorted(self.sources)

    # -- where a topic's messages go (paho's thread) --------------------------------------

    def route_miss(self, topic: bytes) -> Route:
        name = topic.decode("utf-8", "replace")
        presence = None if self.takeover is None else self.takeover.route(name)
        if presence is not None:
            return presence
        with self._lock:
            subs = [s for f in self._plain.get(name, ()) for s in self.sources.get(f, ())]
            for f, w in self._wildcards.items():
                if matches(w, name):
                    subs.extend(self.sources.get(f, ()))
        return Route(tuple(subs), name)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        """A message paho delivered itself: QoS 2 (acknowledged on read), or the plain client."""
        route = self.route_miss(message._topic)
        route.deliver([bytes(message.payload)])
        if message.dup:
            route.redelivered(1)

    # -- the connection (paho's thread) --------------------------------------------------

    def _each(self) -> list[Any]:
        with self._lock:
            return [s for subs in self.sources.values() for s in subs]

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if self.acks is not None:
            self.acks.reset()
        if reason.is_failure:
            for source in self._each():
                source._fail(
                    f"the broker {self.conn.server} refused the connection: {reason}; "
                    "check username/password and clientid"
                )
            return
        with self._lock:
            self._subacks.clear()
            self._subscribe(list(self.sources))
        if self.takeover is not None:
            self.takeover.connected()

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        with self._lock:
            filters = self._subacks.pop(mid, [])
            outcome = [(f, r, list(self.sources.get(f, ()))) for f, r in zip(filters, reasons)]
        for topic_filter, reason, sources in outcome:
            for source in sources:
                if reason.is_failure:
                    source._fail(
                        f"the broker {self.conn.server} refused the subscription to {topic_filter!r}: {reason}; "
                        "check the topic and the broker's access rules"
                    )
                else:
                    source._subscribed()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if self.acks is not None:
            self.acks.reset()
        sources = self._each()
        for source in sources:
            source._disconnected()
        if not self._closing and sources:
            _log.warning("mqtt: disconnected from %s (%s); reconnecting (%d sources)",
                         self.conn.server, reason, len(sources))

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        """paho watches its socket with select(), which cannot watch descriptors >= 1024: say so
        rather than stay "connecting" for ever."""
        fd = sock.fileno() if hasattr(sock, "fileno") else -1
        if fd >= 1024:
            for source in self._each():
                source._fail(
                    f"the connection to {self.conn.server} got file descriptor {fd}, which paho-mqtt's select() "
                    "cannot watch (>= 1024): this process holds too many files or connections"
                )

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        for source in self._each():
            source._fail(f"cannot connect to {self.conn.server}; retrying (is the broker running?)")


class Hub:
    """The lanes of a process, by how they connect."""

    def __init__(self) -> None:
        self._lanes: dict[Connection, list[Lane]] = {}
        self._lock = threading.Lock()

    def attach(self, source: Any) -> Lane:
        """Put ``source`` (its ``conn`` and ``topic``) on a lane, made if need be; subscribe."""
        conn: Connection = source.conn
        own = conn.explicit_id or not conn.clean
        key = dataclasses.replace(conn, qos=0, client_id=conn.client_id if own else "")
        with self._lock:
            lanes = self._lanes.setdefault(key, [])
            lane = next((lane for lane in lanes if own or lane.can_take(source.topic)), None)
            if lane is None:
                client_id = conn.client_id if own else f"plutino-{uuid.uuid4().hex[:16]}"
                lane = Lane(dataclasses.replace(conn, client_id=client_id), persistent=not conn.clean)
                lanes.append(lane)
                lane.attach(source)
                lane.start()
            else:
                lane.attach(source)
        return lane

    def detach(self, source: Any, lane: Lane) -> None:
        """Take ``source`` off ``lane``; close the lane when it was the last."""
        with self._lock:
            last = lane.detach(source)
            if last:
                for key, lanes in list(self._lanes.items()):
                    if lane in lanes:
                        lanes.remove(lane)
                        if not lanes:
                            del self._lanes[key]
        if last:
            lane.close()

    def lanes(self) -> list[Lane]:
        """Every open lane (for tests and metrics)."""
        with self._lock:
            return [lane for lanes in self._lanes.values() for lane in lanes]


#: The process's hub, shared by every mqtt source.
HUB = Hub()

__all__ = ["HUB", "Hub", "Lane"]
