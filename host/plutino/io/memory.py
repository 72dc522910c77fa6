"""The ``memory`` source and sink: topics inside the host process.

A rule's memory sink publishes its batches to a topic; a stream of TYPE="memory" reads a topic
(its DATASOURCE). Rules can be chained this way without a broker, and a script or a test can
feed a stream and read a rule's output directly::

    from plutino.io.memory import BROKER
    results = BROKER.subscribe("out")          # before the rule starts emitting
    BROKER.publish("in", batch)                # CREATE STREAM s () WITH (TYPE="memory", DATASOURCE="in")
    BROKER.end("in")                           # a bounded stream: readers get EndOfStream
    first = results.get(timeout=5)

Publishing to a topic nobody reads drops the batch (as a message broker would); publishing to
a reader whose queue is full waits, so a slow rule slows its producer (backpressure).

An engine that schedules rather than blocks calls ``set_ready(callback)`` on the source (or
sets :attr:`Subscription.on_ready`): the callback then comes, from the publishing thread,
whenever a batch or the end of the topic is queued, i.e. whenever ``next(0)`` has something new.

A topic lives in one process. When rules run in several (the data plane's workers), a bridge
(:mod:`plutino.dataplane.memory_bridge`) joins the processes' brokers: each broker reports its
readers per topic (``on_readers``), is told which topics are read elsewhere (``remote``),
relays what is published to those (``relay``), and takes in what others published
(``deliver``). Topics read only where they are written never leave their process.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Mapping

import pyarrow as pa

from plutino_contract.protocols import ConnectionStatus, Context, EndOfStream

from ._base import InProcessSink
from .options import Options, canonical

VERSION = "1.0.0"

_END = object()


class Subscription:
    """One reader of a topic: a bounded queue of batches."""

    def __init__(self, broker: "MemoryBroker", topic: str, maxsize: int) -> None:
        self.broker = broker
        self.topic = topic
        self.queue: queue.Queue[Any] = queue.Queue(maxsize)
        self.closed = False
        self.ended = False
        #: Called (cheap, from the publisher's thread) after a batch or the end was queued.
        self.on_ready: Callable[[], None] | None = None

    def get(self, timeout: float | None = None) -> pa.RecordBatch | None:
        """The next batch, None after ``timeout`` seconds; EndOfStream once the topic ended."""
        if self.ended:
            raise EndOfStream(self.topic)
        try:
            item = self.queue.get(timeout=timeout) if timeout is None or timeout > 0 else self.queue.get_nowait()
        except queue.Empty:
            return None
        if item is _END:
            self.ended = True
            raise EndOfStream(self.topic)
        return item

    def close(self) -> None:
        self.broker.unsubscribe(self)


class MemoryBroker:
    """Topics and their readers. Thread-safe."""

    def __init__(self) -> None:
        self._subs: dict[str, list[Subscription]] = {}
        self._lock = threading.Lock()
        #: Topics read in other processes (kept by a bridge); what is published to them is relayed.
        self.remote: frozenset[str] = frozenset()
        #: ``relay(topic, batch)`` (batch None: the topic ended), set by a bridge.
        self.relay: Callable[[str, pa.RecordBatch | None], None] | None = None
        #: ``on_readers(topic, count)`` when the number of this process's readers of a topic changes.
        self.on_readers: Callable[[str, int], None] | None = None

    def subscribe(self, topic: str, maxsize: int = 1024) -> Subscription:
        sub = Subscription(self, topic, maxsize)
        with self._lock:
            subs = self._subs.setdefault(topic, [])
            subs.append(sub)
            count = len(subs)
        if self.on_readers is not None:
            self.on_readers(topic, count)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            sub.closed = True
            subs = self._subs.get(sub.topic, [])
            if sub not in subs:
                return
            subs.remove(sub)
            count = len(subs)
        if self.on_readers is not None:
            self.on_readers(sub.topic, count)

    def readers(self) -> dict[str, int]:
        """Topics with readers in this process, and how many."""
        with self._lock:
            return {t: len(s) for t, s in self._subs.items() if s}

    def subscribers(self, topic: str) -> int:
        with self._lock:
            return len(self._subs.get(topic, []))

    def publish(self, topic: str, batch: pa.RecordBatch) -> int:
        """Queue ``batch`` for every reader of ``topic`` (waiting while a queue is full);
        return how many readers got it."""
        delivered = self._put(topic, batch)
        if topic in self.remote and self.relay is not None:
            self.relay(topic, batch)
            delivered += 1
        return delivered

    def end(self, topic: str) -> None:
        """End the topic's stream: its current readers raise EndOfStream after the batches queued."""
        self._put(topic, _END)
        if topic in self.remote and self.relay is not None:
            self.relay(topic, None)

    def deliver(self, topic: str, batch: pa.RecordBatch | None) -> int:
        """Take in a batch another process published (None: the topic ended there)."""
        return self._put(topic, _END if batch is None else batch)

    def _put(self, topic: str, item: Any) -> int:
        with self._lock:
            subs = list(self._subs.get(topic, []))
        delivered = 0
        for sub in subs:
            while not sub.closed:
                try:
                    sub.queue.put(item, timeout=0.1)
                    delivered += 1
                    ready = sub.on_ready
                    if ready is not None:
                        ready()
                    break
                except queue.Full:
                    continue
        return delivered


#: The process's broker, shared by every memory source and sink.
BROKER = MemoryBroker()


def _check_keys(plugin: str, config: Mapping[str, Any], allowed: set[str], example: str) -> dict[str, Any]:
    """``config`` under the allowed spellings (matched case-insensitively, as in eKuiper)."""
    return Options(plugin, config, allowed, example).config


class MemorySource:
    def __init__(self, topic: str, buffer: int, broker: MemoryBroker) -> None:
        self.topic = topic
        # subscribed at creation, so that a batch published right after the rule started is seen
        self._sub = broker.subscribe(topic, buffer)

    def schema(self) -> pa.Schema:
        return pa.schema([])  # a tuple source: the columns are those of the batches published

    def open(self) -> None:
        pass

    def set_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` whenever ``next(0)`` has something new (a batch, or the end)."""
        self._sub.on_ready = callback
        if not self._sub.queue.empty() or self._sub.ended:
            callback()

    def next(self, timeout: float) -> pa.RecordBatch | None:
        return self._sub.get(timeout)

    def status(self) -> ConnectionStatus:
        return "connected"

    def close(self) -> None:
        self._sub.close()


class MemorySourcePlugin:
    """``CREATE STREAM s () WITH (TYPE="memory", DATASOURCE="topic")``."""

    name = "memory"
    version = VERSION
    kind = "source"

    def __init__(self, broker: MemoryBroker | None = None) -> None:
        self.broker = broker or BROKER

    def create(self, config: Mapping[str, Any], context: Context) -> MemorySource:
        config = canonical(config, ("datasource", "topic", "bufferLength"))
        topic = config.get("datasource") or config.get("topic")
        if not topic or not isinstance(topic, str):
            raise ValueError('memory source: no topic; give the stream DATASOURCE="<topic>"')
        buffer = config.get("bufferLength", 1024)
        if not isinstance(buffer, int) or isinstance(buffer, bool) or buffer < 1:
            raise ValueError(f"memory source: bufferLength must be a whole number >= 1, got {buffer!r}")
        return MemorySource(topic, buffer, self.broker)


#: schema metadata of a memory sink's batches: the field that says what a row does to a
#: table (eKuiper's rowkindField: "insert", "update" or "delete") and the key field
ROWKIND_META, KEY_META = b"plutino.rowkind", b"plutino.key"


class MemorySink(InProcessSink):
    def __init__(self, topic: str, broker: MemoryBroker, table_fields: dict[bytes, bytes] | None = None) -> None:
        self.topic = topic
        self.broker = broker
        self.table_fields = table_fields or None

    def write(self, batch: pa.RecordBatch) -> None:
        if self.table_fields is not None:
            batch = batch.replace_schema_metadata({**(batch.schema.metadata or {}), **self.table_fields})
        self.broker.publish(self.topic, batch)


class MemorySinkPlugin:
    """Rule action ``{"memory": {"topic": "result"}}``."""

    name = "memory"
    version = VERSION
    kind = "sink"

    def __init__(self, broker: MemoryBroker | None = None) -> None:
        self.broker = broker or BROKER

    def create(self, config: Mapping[str, Any], context: Context) -> MemorySink:
        config = _check_keys("memory sink", config, {"topic", "rowkindField", "keyField"},
                             '{"memory": {"topic": "result"}}')
        topic = config.get("topic")
        if not topic or not isinstance(topic, str):
            raise ValueError('memory sink: property \'topic\' is missing; write {"memory": {"topic": "result"}}')
        fields = {}
        for prop, meta in (("rowkindField", ROWKIND_META), ("keyField", KEY_META)):
            value = config.get(prop)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"memory sink: {prop} must name a field, got {value!r}")
            if value:
                fields[meta] = value.encode()
        if ROWKIND_META in fields and KEY_META not in fields:
            raise ValueError('memory sink: rowkindField needs keyField, the field that names the row to change; '
                             'write {"memory": {"topic": "t", "rowkindField": "action", "keyField": "id"}}')
        return MemorySink(topic, self.broker, fields)


__all__ = ["BROKER", "KEY_META", "ROWKIND_META", "MemoryBroker", "MemorySinkPlugin", "MemorySourcePlugin",
           "Subscription"]
