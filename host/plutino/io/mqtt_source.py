"""The ``mqtt`` source's instance: the messages of one subscription, handed out in batches.

The plugin, which checks the stream's options, is in :mod:`.mqtt`. A *bytes* source: every
message becomes one ``payload`` value, and the host decodes a whole batch of them by the
stream's FORMAT. The source is one subscription on a connection it shares with the other
sources that connect alike (:mod:`.mqtt_hub`); messages arrive on that connection's network
thread (through :class:`~.mqtt_fast_client._FastClient`, in bulk) into a buffer;
:meth:`MqttSource.next` hands out everything pending as one batch. "connected" means the
subscription was acknowledged, so messages flow.

Two ways to acknowledge messages to the broker:

* on read (the default, and always with a clean session, where the broker forgets
  unacknowledged messages at a disconnection anyway): when the rule reads slower than messages
  arrive, the oldest past ``bufferLength`` are dropped and counted (``dropped``);
* at least once (a persistent session, ``cleanSession: false``): a QoS 1/2 message is
  acknowledged only when the engine calls the callable :meth:`MqttSource.take_ack` returned for
  its batch, i.e. once every rule delivered it; nothing is dropped -- the broker sends no more
  than its in-flight window of unacknowledged messages, which bounds the buffer -- and what is
  not acknowledged at close is sent again by the broker on the next connection (counted in
  ``redelivered``, as is every message the broker marks as sent again).

An engine that schedules rather than blocks calls :meth:`MqttSource.set_ready`: the source then
calls it back whenever ``next(0)`` has something new to return.

Metadata (``meta(topic)``, ``mqtt(topic)``): only once the engine calls :meth:`want_meta` (a
rule's SQL asks for it) does the source keep each delivered group's topic, as runs
``[topic, count]`` (one per group of payloads, never per message); a batch then carries its
runs in its schema metadata (:data:`META_TOPIC`) for the engine to make the column.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any, Callable

import orjson
import pyarrow as pa

from .formats import PAYLOAD_SCHEMA, payload_batch
from .mqtt_connection import ClientBase, Connection, Status
from .mqtt_hub import HUB, Lane

_log = logging.getLogger("plutino.io.mqtt")

MAX_BATCH = 10_000  # messages handed out by one next()
META_TOPIC = b"plutino.meta.topic"  # a batch's schema metadata: JSON [[topic, count], ...]


class MqttSource(ClientBase):
    def __init__(self, conn: Connection, topic: str, buffer: int, what: str) -> None:
        self.conn = conn
        self.topic = topic
        self.what = what
        self.capacity = buffer
        self.dropped = 0
        self.received = 0
        #: Messages the broker sent again (DUP): not acknowledged before a disconnection or a close.
        self.redelivered = 0
        self._status = Status()
        self._pending: collections.deque[bytes] = collections.deque()
        self._entries: collections.deque[Any] = collections.deque()  # at least once: one per pending payload
        self._cond = threading.Condition()
        self._error: str | None = None
        self._reported: str | None = None
        self._ready: Callable[[], None] | None = None
        self._lane: Lane | None = None
        self._untaken: list[Any] | None = None  # the ack entries of the last batch, until take_ack()
        self._runs: collections.deque[list[Any]] | None = None  # [topic, count] of pending; want_meta()

    def want_meta(self) -> None:
        """Keep each message's topic from now on (a rule asks ``meta(topic)``)."""
        with self._cond:
            if self._runs is None:
                self._runs = collections.deque([["", len(self._pending)]] if self._pending else [])

    @property
    def at_least_once(self) -> bool:
        """Whether messages are acknowledged when the engine says so (a persistent session)."""
        lane = self._lane
        return lane is not None and lane.acks is not None

    @property
    def sessions_adopted(self) -> int | None:
        """The dead share-group members' sessions this source's connection holds now, or None
        when the connection takes none over (no persistent share group: .mqtt_takeover)."""
        lane = self._lane
        takeover = None if lane is None else lane.takeover
        return None if takeover is None else len(takeover.adoptions)

    def schema(self) -> pa.Schema:
        return PAYLOAD_SCHEMA

    def open(self) -> None:
        self._status.set("connecting")
        self._lane = HUB.attach(self)

    def close(self) -> None:
        lane, self._lane = self._lane, None
        if lane is not None:
            HUB.detach(self, lane)
            if lane.acks is not None and lane.sources:  # the lane stays: release what this source held
                with self._cond:
                    held = [e for e in self._entries if e is not None]
                    self._entries.clear()
                    self._pending.clear()
                lane.acks.done(held)
        self._status.set("disconnected")

    def set_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (cheap, from the connection's thread, perhaps more often than
        needed) whenever ``next(0)`` would return something new: messages, or an error to raise."""
        self._ready = callback
        with self._cond:
            due = bool(self._pending) or (self._error is not None and self._error != self._reported)
        if due:
            callback()

    def take_ack(self) -> Callable[[], None] | None:
        """The acknowledgement of the batch ``next()`` just returned: call it (once, from any
        thread) when every rule delivered the batch. None when there is nothing to acknowledge
        (acknowledged on read, or only QoS 0 messages)."""
        entries, self._untaken = self._untaken, None
        lane = self._lane
        if not entries or lane is None or lane.acks is None:
            return None
        acks = lane.acks
        done = [False]

        def ack() -> None:
            if not done[0]:
                done[0] = True
                acks.done(entries)

        return ack

    # -- the connection's thread (the lane calls these) ----------------------------------

    def _subscribed(self) -> None:
        with self._cond:
            self._error = self._reported = None  # a failure before this one is over
        if self._status.value != "connected":
            self._status.set("connected")
            _log.info("%s: subscribed to %r on %s", self.what, self.topic, self.conn.server)

    def _disconnected(self) -> None:
        self._status.set("disconnected")

    def _fail(self, message: str) -> None:
        self._status.set("disconnected")
        with self._cond:
            self._error = message
            self._cond.notify()
        ready = self._ready
        if ready is not None:
            ready()

    def _take(self, payloads: list[bytes], topic: str = "") -> None:
        with self._cond:
            pending = self._pending
            was_empty = not pending
            pending.extend(payloads)
            if self._runs is not None:
                self._runs.append([topic, len(payloads)])
            self.received += len(payloads)
            over = len(pending) - self.capacity
            if over > 0:
                self._drop(over)
            self._cond.notify()
        ready = self._ready
        if was_empty and ready is not None:
            ready()

    def _drop(self, over: int) -> None:
        for _ in range(over):
            self._pending.popleft()
        if self._runs is not None:
            _take_runs(self._runs, over)
        before, self.dropped = self.dropped, self.dropped + over
        if before == 0 or before // 10_000 != self.dropped // 10_000:
            _log.error(
                "%s: %d messages dropped: the rule reads slower than they arrive (bufferLength %d)",
                self.what,
                self.dropped,
                self.capacity,
            )

    def _take_acked(self, payloads: list[bytes], entries: list[Any], topic: str = "") -> None:
        with self._cond:
            was_empty = not self._pending
            self._pending.extend(payloads)
            if self._runs is not None:
                self._runs.append([topic, len(payloads)])
            self._entries.extend(entries)
            self.received += len(payloads)
            self._cond.notify()
        ready = self._ready
        if was_empty and ready is not None:
            ready()

    # -- the rule's thread ---------------------------------------------------------------

    def next(self, timeout: float) -> pa.RecordBatch | None:
        untaken, self._untaken = self._untaken, None
        if untaken:  # the engine did not take the last batch's acknowledgement: acknowledged on read
            lane = self._lane
            if lane is not None and lane.acks is not None:
                lane.acks.done(untaken)
        with self._cond:
            if not self._pending and timeout > 0:
                self._cond.wait(timeout)
            pending = self._pending
            if not pending:
                if self._error is not None and self._error != self._reported:
                    self._reported = self._error
                    raise ConnectionError(f"{self.what}: {self._error}")
                return None
            n = min(len(pending), MAX_BATCH)
            if n == len(pending):
                payloads = list(pending)
                pending.clear()
            else:
                payloads = [pending.popleft() for _ in range(n)]
            if self._entries:
                entries = self._entries
                taken = [entries.popleft() for _ in range(min(n, len(entries)))]
                self._untaken = [e for e in taken if e is not None] or None
            runs = _take_runs(self._runs, n) if self._runs is not None else None
        batch = payload_batch(payloads)
        return batch if runs is None else batch.replace_schema_metadata({META_TOPIC: orjson.dumps(runs)})


def _take_runs(runs: collections.deque[list[Any]], n: int) -> list[list[Any]]:
    """The first ``n`` messages' runs, taken off ``runs`` (the last one split if need be)."""
    out: list[list[Any]] = []
    while n > 0 and runs:
        run = runs[0]
        if run[1] <= n:
            out.append(runs.popleft())
            n -= run[1]
        else:
            out.append([run[0], n])
            run[1] -= n
            n = 0
    return out


__all__ = ["MAX_BATCH", "META_TOPIC", "MqttSource"]
