"""The mqtt source's paho client, with a quicker way in for the messages themselves.

See :class:`_FastClient`: it is most of what makes the mqtt source fast (bench/mqtt.py).
:func:`source_client` gives the source one when the installed paho has what it relies on, and
paho's plain client otherwise.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion

from .mqtt_connection import Connection

_log = logging.getLogger("plutino.io.mqtt")

_RECV_BYTES = 1 << 18  # one socket read of _FastClient
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
PAHO_PRIVATE = ("_sock_recv", "_sock", "_in_packet", "_last_bytes_received", "_send_puback", "_protocol")


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

    This relies on a few of paho 2's private members (``PAHO_PRIVATE``); :func:`source_client`
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
            length, at = varint(buf, pos + 1, end)
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
                props, p = varint(buf, p, stop)
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


def source_client(conn: Connection, on_payloads: Any) -> paho.Client:
    """The source's client: a :class:`_FastClient` when this paho has what it relies on."""
    client = conn.client(_FastClient, on_payloads=on_payloads)
    missing = [m for m in PAHO_PRIVATE if not hasattr(client, m)]
    if not missing and isinstance(client._in_packet, dict) and "command" in client._in_packet:
        return client
    _log.warning("paho-mqtt %s lacks %s: the mqtt source reads through paho's plain (slower) path",
                 getattr(paho, "__version__", "?"), ", ".join(missing) or "_in_packet['command']")
    return conn.client()


__all__ = ["source_client", "varint"]
