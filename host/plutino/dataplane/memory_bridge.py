"""Memory topics across processes: rules joined by ``memory`` topics work wherever they run.

Each process (the server and every worker) has its own :class:`~plutino.io.memory.MemoryBroker`.
The :class:`MemoryHub`, in the server, knows how many readers each process has per topic;
it tells each process which topics are read *elsewhere*, so a process relays only what
someone else reads (a pipeline of rules on one worker never crosses a process). A relayed
batch travels as Arrow IPC bytes: worker -> server -> the processes that read the topic.

Placement keeps rules joined by topics on one worker when it can (:mod:`.placement`); the
bridge is what makes the other cases work: a dedicated rule, a script feeding a stream from
the server's process, a test reading a rule's output.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import pyarrow as pa

from plutino.io.memory import MemoryBroker

HOST = "host"


def encode(batch: pa.RecordBatch | None) -> bytes | None:
    if batch is None:
        return None
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def decode(data: bytes | None) -> pa.RecordBatch | None:
    return None if data is None else pa.ipc.open_stream(data).read_next_batch()


class MemoryHub:
    """The server's side: readers per process and topic, and the relaying between them.

    ``send(member, op, **kwargs)`` sends an operation to a worker (``mem_remote``,
    ``mem_deliver``); the server's own broker is ``HOST``."""

    def __init__(self, broker: MemoryBroker, send: Callable[..., Any],
                 members: Callable[[], list[Any]] = list) -> None:
        self.broker = broker
        self.send = send
        self.members = members  # the live workers
        self._readers: dict[str, dict[Any, int]] = {}
        self._remote: dict[Any, set[str]] = {HOST: set()}
        self._lock = threading.Lock()
        broker.on_readers = lambda topic, count: self.readers_changed(HOST, topic, count)
        broker.relay = lambda topic, batch: self.published(HOST, topic, encode(batch))
        for topic, count in broker.readers().items():
            self.readers_changed(HOST, topic, count)

    def close(self) -> None:
        if self.broker.on_readers is not None:
            self.broker.on_readers = None
            self.broker.relay = None
            self.broker.remote = frozenset()

    def remote_for(self, member: Any) -> list[str]:
        """The topics read outside ``member`` (a new worker's starting set)."""
        with self._lock:
            return sorted(t for t, readers in self._readers.items()
                          if any(n for m, n in readers.items() if m != member))

    def readers_changed(self, member: Any, topic: str, count: int) -> None:
        with self._lock:
            readers = self._readers.setdefault(topic, {})
            if count:
                readers[member] = count
            else:
                readers.pop(member, None)
            changes = self._recompute(topic)
        self._tell(changes)

    def forget(self, member: Any) -> None:
        """A worker is gone: its readers with it."""
        with self._lock:
            topics = [t for t, readers in self._readers.items() if member in readers]
            changes = []
            for topic in topics:
                self._readers[topic].pop(member, None)
                changes += self._recompute(topic)
            self._remote.pop(member, None)
        self._tell(changes)

    def _recompute(self, topic: str) -> list[tuple[Any, str, bool]]:
        readers = self._readers.get(topic, {})
        members = {HOST, *self.members(), *readers}
        changes = []
        for m in members:
            elsewhere = any(n for other, n in readers.items() if other != m)
            mine = self._remote.setdefault(m, set())
            if elsewhere != (topic in mine):
                (mine.add if elsewhere else mine.discard)(topic)
                changes.append((m, topic, elsewhere))
        return changes

    def _tell(self, changes: list[tuple[Any, str, bool]]) -> None:
        for member, topic, on in changes:
            if member == HOST:
                self.broker.remote = frozenset(self._remote[HOST])
            else:
                self.send(member, "mem_remote", topic=topic, on=on)

    def published(self, member: Any, topic: str, payload: bytes | None) -> None:
        """``member`` published to ``topic``: pass it to every other process that reads it."""
        with self._lock:
            targets = [m for m, n in self._readers.get(topic, {}).items() if n and m != member]
        for target in targets:
            if target == HOST:
                self.broker.deliver(topic, decode(payload))
            else:
                self.send(target, "mem_deliver", topic=topic, payload=payload)


class WorkerBridge:
    """A worker's side: report readers, relay to the server, take in what it relays."""

    def __init__(self, broker: MemoryBroker, emit: Callable[[str, Any], None]) -> None:
        import queue

        self.broker = broker
        self._inbox: queue.Queue[tuple[str, bytes | None]] = queue.Queue(256)
        broker.on_readers = lambda topic, count: emit("mem_readers", (topic, count))
        broker.relay = lambda topic, batch: emit("mem_publish", (topic, encode(batch)))
        threading.Thread(target=self._deliver, name="plutino-memory-inbox", daemon=True).start()

    def mem_remote(self, topic: str, on: bool) -> None:
        remote = set(self.broker.remote)
        (remote.add if on else remote.discard)(topic)
        self.broker.remote = frozenset(remote)

    def mem_deliver(self, topic: str, payload: bytes | None) -> None:
        self._inbox.put((topic, payload))  # waits when full: backpressure up to the publisher

    def _deliver(self) -> None:
        while True:
            topic, payload = self._inbox.get()
            self.broker.deliver(topic, decode(payload))


__all__ = ["HOST", "MemoryHub", "WorkerBridge", "decode", "encode"]
