"""Acknowledging MQTT messages once the rules are done with them, in the order they came.

With a persistent session (``cleanSession: false``) the broker keeps every QoS 1/2 message it
sent until the client acknowledges it, and sends the unacknowledged ones again on the next
connection. So the source does not acknowledge a message when it reads it (the broker would
forget it, and a stop or crash before the rule delivered it would lose it) but when the engine
says every rule delivered it (:meth:`~.mqtt_source.MqttSource.take_ack`).

Acknowledgements come from the engine's threads, in any order; MQTT 3.1.1 §4.6 (and 5's
§4.6) wants PUBACKs (PUBRECs at QoS 2) in the order the PUBLISHes arrived. :class:`AckQueue`
keeps one entry per message in arrival order, each counting the sources still holding it, and
sends the acknowledgements of the done prefix. An entry names its queue: a source holds entries
of its lane's own connection and, while that lane takes over a dead peer's session
(:mod:`.mqtt_takeover`), of the adopted connection too; :meth:`AckQueue.done` hands each entry
to its own queue. Sending goes through paho's own path
(``_send_puback``: an append to paho's out-packet deque and a byte to wake its network thread),
which paho's ``publish()`` also uses from any thread.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

import paho.mqtt.client as paho

SETTLE_S = 1.0  # a persistent connection's close waits this long at most for the broker to read its PUBACKs

# an entry: [packet id, qos, sources still holding it, connection generation, its AckQueue]
Entry = list


class AckQueue:
    """The QoS 1/2 messages of one connection not acknowledged yet, oldest first."""

    def __init__(self) -> None:
        self.client: Any = None  # the paho client sending the acknowledgements (set by the hub)
        self._fifo: collections.deque[Entry] = collections.deque()
        self._lock = threading.Lock()
        self.generation = 0
        self.sent = 0

    def add(self, mid: int, qos: int, holders: int) -> Entry:
        """A message that just came (on paho's thread), held by ``holders`` sources."""
        entry = [mid, qos, holders, self.generation, self]
        self._fifo.append(entry)  # complete before it is visible: no lock needed
        return entry

    def done(self, entries: list[Entry]) -> None:
        """One holder is done with each of ``entries`` (any thread); send what is now due, each
        entry's acknowledgement by its own queue (connection)."""
        others: list[Entry] = []
        with self._lock:
            for entry in entries:
                if entry[4] is self:
                    entry[2] -= 1
                else:
                    others.append(entry)
        self.flush()
        if others:
            for queue in {id(e[4]): e[4] for e in others}.values():
                queue.done([e for e in others if e[4] is queue])

    def flush(self) -> None:
        """Send the acknowledgements of the oldest messages no source holds any more."""
        client = self.client
        with self._lock:
            fifo, generation = self._fifo, self.generation
            while fifo and fifo[0][2] <= 0:
                mid, qos, _, gen, _ = fifo.popleft()
                if gen != generation or client is None:
                    continue
                if qos == 1:
                    client._send_puback(mid)
                else:
                    client._send_pubrec(mid)
                self.sent += 1

    def reset(self) -> None:
        """The connection was lost: what it delivered is not acknowledged any more (the broker
        sends it again on the next connection, and the sources count it as redelivered)."""
        with self._lock:
            self._fifo.clear()
            self.generation += 1

    def __len__(self) -> int:
        return len(self._fifo)


def settle_acks(client: paho.Client, timeout: float = SETTLE_S) -> None:
    """Before a persistent session's connection is closed: a PINGREQ after the last PUBACKs, and
    a short wait for its PINGRESP. The broker handles a connection's packets in order, so the
    answer means it read every acknowledgement. Closing at once instead, while the broker still
    sends into its in-flight window, resets the connection, and the broker may drop the last
    PUBACKs unread: their messages come again (duplicates, counted, in about one graceful stop
    in six, tests/reliability/test_at_least_once.py)."""
    ping = getattr(client, "_send_pingreq", None)
    if ping is None or not client.is_connected():
        return
    try:
        if ping() != paho.MQTT_ERR_SUCCESS:
            return
    except Exception:  # noqa: BLE001 - a connection going away: nothing to settle
        return
    deadline = time.monotonic() + timeout
    while getattr(client, "_ping_t", 0) and client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.002)


__all__ = ["AckQueue", "Entry", "SETTLE_S", "settle_acks"]
