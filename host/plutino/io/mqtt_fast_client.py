"""The mqtt sources' paho client, with a quicker way in for the messages themselves.

See :class:`_FastClient`: it is most of what makes the mqtt source fast (bench/mqtt.py). One
client serves every source attached to a shared connection (:mod:`.mqtt_hub`): it routes each
message by its topic to a :class:`Route`, the sources whose filter matches. :func:`source_client`
gives the hub one when the installed paho has what it relies on, and paho's plain client
otherwise.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any, Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion

from .mqtt_acks import AckQueue
from .mqtt_connection import Connection

_log = logging.getLogger("plutino.io.mqtt")

_RECV_BYTES = 1 << 18  # one socket read of _FastClient
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
PAHO_PRIVATE = (
    "_sock_recv", "_sock", "_in_packet", "_last_bytes_received", "_send_puback", "_send_pubrec", "_protocol",
    "_handle_publish",
)
MAX_ROUTES = 65_536  # topics whose route is cached; past it the cache starts again


class Route:
    """Where the messages of one topic go: the sources (``subs``) whose filter matches it.

    A source here is anything with ``_take(payloads, topic)``, ``_take_acked(payloads, entries,
    topic)`` and a ``redelivered`` counter (:class:`~.mqtt_source.MqttSource`). Every source
    gets the same list; each copies what it keeps. ``topic``: the topic of all those payloads
    (a source keeps it only for rules that ask ``meta(topic)``)."""

    __slots__ = ("subs", "topic")

    def __init__(self, subs: tuple[Any, ...], topic: str = "") -> None:
        self.subs = subs
        self.topic = topic

    def deliver(self, payloads: list[bytes]) -> None:
        topic = self.topic
        for sub in self.subs:
            sub._take(payloads, topic)

    def deliver_acked(self, payloads: list[bytes], entries: list[Any]) -> None:
        topic = self.topic
        for sub in self.subs:
            sub._take_acked(payloads, entries, topic)

    def redelivered(self, count: int) -> None:
        for sub in self.subs:
            sub.redelivered += count


class _CallbackRoute(Route):
    """Every message to one callback: a client used without a hub (bench/mqtt.py's reference)."""

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[list[bytes]], None]) -> None:
        super().__init__(())
        self.callback = callback

    def deliver(self, payloads: list[bytes]) -> None:
        self.callback(payloads)


class _FastClient(paho.Client):
    """paho's client with a quicker way in for PUBLISH packets.

    paho reads each packet with three ``recv()`` calls after a ``select()``, then builds an
    ``MQTTMessage`` and runs its callback machinery: ~12 us a message in Python, which capped
    the source near 40k messages/s (bench/mqtt.py). This client reads the socket in large
    chunks and serves paho's reads from them; the complete PUBLISH packets at the head of a
    chunk it takes itself, in a plain loop: it looks up each topic's :class:`Route` (a dict,
    filled by ``route_miss(topic)`` the first time a topic is seen), hands each route its
    payloads in one call per chunk, and acknowledges them. Everything else -- CONNACK, SUBACK,
    PINGRESP, a packet split between two reads, anything malformed -- is left to paho, which
    reads it from the same chunk, so the protocol (connection, subscription, keepalive, errors)
    stays paho's; a PUBLISH paho reads is routed the same way (:meth:`_handle_publish`).

    Acknowledgement: with ``acks`` None, QoS 1 messages are acknowledged (PUBACK) as soon as
    they are handed over, and QoS 2 ones go through paho's own flow (to ``on_message``). With
    an :class:`~.mqtt_acks.AckQueue` (a persistent session), each QoS 1 or 2 message becomes an
    entry of it, held by the sources it went to; its PUBACK (PUBREC at QoS 2) is sent once they
    have all acknowledged it, in the order the messages came.

    This relies on a few of paho 2's private members (``PAHO_PRIVATE``); :func:`source_client`
    checks them and falls back to the plain client, with a warning, when a paho release lacks
    them."""

    def __init__(
        self, *args: Any, on_payloads: Any = None, route_miss: Any = None, acks: AckQueue | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if on_payloads is not None:
            everything = _CallbackRoute(on_payloads)
            route_miss = lambda topic: everything  # noqa: E731
        self.route_miss: Callable[[bytes], Route] = route_miss
        self.routes: dict[bytes, Route] = {}
        self.acks = acks
        self._rbuf = b""
        self._rpos = 0
        self._rsock: Any = None
        self._quickack_ok = _QUICKACK is not None

    def forget_routes(self) -> None:
        """Drop the cached routes (a subscription came or went); a chunk being taken may still
        use the old ones."""
        self.routes = {}

    def _route(self, topic: bytes) -> Route:
        routes = self.routes
        if len(routes) >= MAX_ROUTES:
            routes = self.routes = {}
        route = routes[topic] = self.route_miss(topic)
        return route

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
                if self.acks is None:
                    self._take_publishes()
                else:
                    self._take_publishes_acked()
                if self._rpos >= len(self._rbuf):
                    break
            rc = super().loop_read(max_packets)  # a packet left to paho
        return rc

    def _take_publishes(self) -> None:
        """The fast path, acknowledging on read: QoS 0 and 1 PUBLISH packets in bulk."""
        buf, pos, end = self._rbuf, self._rpos, len(self._rbuf)
        v5 = self._protocol == MQTTProtocolVersion.MQTTv5
        routes = self.routes
        groups: dict[Route, list[bytes]] = {}
        acks: list[int] = []
        dups: list[Route] = []
        last_topic = b""
        group: list[bytes] = []
        while pos < end:
            head = buf[pos]
            qos = (head >> 1) & 3
            if head >> 4 != 3 or qos > 1:  # not a PUBLISH, or QoS 2 (or malformed): paho's
                break
            length, at = varint(buf, pos + 1, end)
            stop = at + length
            if length < 0 or stop > end or at + 2 > stop:  # split between reads, or malformed
                break
            t = at + 2
            p = t + ((buf[at] << 8) | buf[at + 1])  # past the topic
            if p == t:  # an empty topic (malformed in MQTT 3, a topic alias in 5): paho's
                break
            topic = buf[t:p]
            mid = 0
            if qos:
                if p + 2 > stop:
                    break
                mid = (buf[p] << 8) | buf[p + 1]
                p += 2
            if v5:
                props, p = varint(buf, p, stop)
                if props < 0:
                    break
                p += props
            if p > stop:
                break
            if topic != last_topic:
                route = routes.get(topic) or self._route(topic)
                group = groups.get(route)  # type: ignore[assignment]
                if group is None:
                    group = groups[route] = []
                last_topic = topic
            group.append(buf[p:stop])
            if qos:
                acks.append(mid)
                if head & 8:  # DUP: the broker sends it again
                    dups.append(route)
            pos = stop
        self._rpos = pos
        if groups:
            self._last_bytes_received = time.monotonic()  # paho's keepalive clock
            for route, payloads in groups.items():
                route.deliver(payloads)
            for route in dups:
                route.redelivered(1)
            for mid in acks:
                self._send_puback(mid)

    def _take_publishes_acked(self) -> None:
        """The fast path of a persistent session: PUBLISH packets of any QoS in bulk, each QoS
        1 or 2 one an entry of the ack queue held by the sources it goes to."""
        buf, pos, end = self._rbuf, self._rpos, len(self._rbuf)
        v5 = self._protocol == MQTTProtocolVersion.MQTTv5
        ackq = self.acks
        assert ackq is not None
        groups: dict[Route, tuple[list[bytes], list[Any]]] = {}
        dups: list[Route] = []
        while pos < end:
            head = buf[pos]
            if head >> 4 != 3 or head & 6 == 6:  # not a PUBLISH (or malformed): paho's
                break
            length, at = varint(buf, pos + 1, end)
            stop = at + length
            if length < 0 or stop > end or at + 2 > stop:
                break
            parsed = _parse(head, buf, at, stop, v5)
            if parsed is None:
                break
            topic, mid, p = parsed
            self._take_one(groups, dups, head, topic, mid, buf[p:stop])
            pos = stop
        self._rpos = pos
        if groups:
            self._last_bytes_received = time.monotonic()
            self._hand_over(groups, dups)
            ackq.flush()  # messages no source holds

    def _take_one(
        self, groups: dict[Route, tuple[list[bytes], list[Any]]], dups: list[Route], head: int, topic: bytes,
        mid: int, payload: bytes,
    ) -> None:
        route = self.routes.get(topic) or self._route(topic)
        group = groups.get(route)
        if group is None:
            group = groups[route] = ([], [])
        group[0].append(payload)
        qos = (head >> 1) & 3
        group[1].append(self.acks.add(mid, qos, len(route.subs)) if qos and self.acks is not None else None)
        if head & 8 and qos:
            dups.append(route)

    @staticmethod
    def _hand_over(groups: dict[Route, tuple[list[bytes], list[Any]]], dups: list[Route]) -> None:
        for route, (payloads, entries) in groups.items():
            route.deliver_acked(payloads, entries)
        for route in dups:
            route.redelivered(1)

    def _handle_publish(self) -> MQTTErrorCode:
        """A PUBLISH paho read itself (split between socket reads): routed as the fast path
        does. QoS 2 when acknowledging on read: paho's own flow (delivered at PUBREL)."""
        head = self._in_packet["command"]
        qos = (head >> 1) & 3
        if qos == 2 and self.acks is None:
            return super()._handle_publish()
        data = bytes(self._in_packet["packet"])
        parsed = _parse(head, data, 0, len(data), self._protocol == MQTTProtocolVersion.MQTTv5)
        if parsed is None or qos == 3:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        topic, mid, p = parsed
        if self.acks is None:
            route = self.routes.get(topic) or self._route(topic)
            route.deliver([data[p:]])
            if head & 8 and qos:
                route.redelivered(1)
            return self._send_puback(mid) if qos == 1 else MQTTErrorCode.MQTT_ERR_SUCCESS
        groups: dict[Route, tuple[list[bytes], list[Any]]] = {}
        dups: list[Route] = []
        self._take_one(groups, dups, head, topic, mid, data[p:])
        self._hand_over(groups, dups)
        self.acks.flush()
        return MQTTErrorCode.MQTT_ERR_SUCCESS


def _parse(head: int, buf: bytes, at: int, stop: int, v5: bool) -> tuple[bytes, int, int] | None:
    """(topic, packet id, where the payload starts) of the PUBLISH whose variable header starts
    at ``buf[at]`` and which ends at ``stop``; None when it is malformed or has an empty topic."""
    if at + 2 > stop:
        return None
    t = at + 2
    p = t + ((buf[at] << 8) | buf[at + 1])
    if p == t:
        return None
    mid = 0
    if head & 6:
        if p + 2 > stop:
            return None
        mid = (buf[p] << 8) | buf[p + 1]
        p += 2
    if v5:
        props, p = varint(buf, p, stop)
        if props < 0:
            return None
        p += props
    if p > stop:
        return None
    return bytes(buf[t: t + ((buf[at] << 8) | buf[at + 1])]), mid, p


def varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
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


def source_client(conn: Connection, route_miss: Any, acks: AckQueue | None, **extra: Any) -> paho.Client | None:
    """A :class:`_FastClient` for a shared connection (``extra``: more of paho's constructor
    arguments), or None when this paho lacks what it relies on (the caller then uses paho's
    plain client)."""
    client = conn.client(_FastClient, route_miss=route_miss, acks=acks, **extra)
    missing = [m for m in PAHO_PRIVATE if not hasattr(client, m)]
    if not missing and isinstance(client._in_packet, dict) and "command" in client._in_packet:
        return client
    _log.warning("paho-mqtt lacks %s: the mqtt source reads through paho's plain (slower) path, acknowledging "
                 "messages on read", ", ".join(missing) or "_in_packet['command']")
    return None


__all__ = ["Route", "source_client", "varint"]
