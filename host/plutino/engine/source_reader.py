"""A stream's source instance, read for the rules that use it: the batches taken in, decoded
once, and handed to each rule's operators.

A :class:`SourceFeed` owns one source instance and its decoder and serves one or more
:class:`Inlet` s -- one per rule. A rule of its own has a feed of its own; the rules of a
stream created with ``SHARED="true"`` share one feed (:mod:`.shared_sources`), so the payloads
are read and decoded once and every rule filters and projects the same Arrow batch.

How the feed reads depends on what the source offers:

- *Driven*: a source with ``set_ready(callback)`` (the built-in mqtt and memory sources) calls
  it when it has something for ``next(0)``; the feed's :class:`~.tasks.Task` then reads what is
  there on the shared scheduler. An idle rule costs no thread and no wake-up, and messages that
  arrive while the task waits for a thread are taken as one batch (batching by load).
- *Threaded*: any other source (native plugins: ``next(timeout)`` may block) is read by a thread
  of the feed's own, with ``next(SOURCE_TIMEOUT_S)``, as the contract describes.

Either way the feed opens the source first (retrying with a growing backoff while it fails), a
``next`` error is counted on every inlet and retried, a payload that does not decode is counted
and its batch's other payloads go on, and the source's ``EndOfStream`` (a bounded stream) is
handed to every rule. Before it takes more in, the feed asks each rule for room; a rule whose
mailbox is full holds the feed until it has room again (backpressure: a shared feed goes at
the pace of its slowest rule).

At-least-once (:mod:`.delivery`): a source with ``take_ack()`` gives, with each batch, the call
that acknowledges it; the feed wraps it in a Delivery that every rule holds until done.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pyarrow as pa

from plutino_contract.protocols import EndOfStream

from .clock import Clock
from .decode import Decoder
from .delivery import NONE, Delivery, release_all
from .handoff import END, POLL_S
from .instances import StatusPoll, failed, status_of
from .metrics import NodeMetrics
from .scheduler import Scheduler
from .tasks import BUDGET, Task

_log = logging.getLogger("plutino.engine")

SOURCE_TIMEOUT_S = 0.1  # the timeout passed to a threaded source's next()
MAX_BACKOFF_S = 5.0


class Inlet:
    """One rule reading a feed: its source node's metrics and its operators."""

    def __init__(self, rule_id: str, metrics: NodeMetrics, ops: Any) -> None:
        self.rule_id = rule_id
        self.metrics = metrics
        self.ops = ops  # OpsRunner: submit(item) -> bool, blocked() -> Mailbox | None
        self.detached = False  # the rule stopped reading: the feed hands it nothing more
        self.active = False  # the feed is handing it a batch right now (its operators may be running)

    def quiet(self, timeout: float) -> bool:
        """After ``detached``: wait until the feed is no longer inside this rule's operators."""
        deadline = time.monotonic() + timeout
        while self.active:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
        return True


class SourceFeed:
    """Reads ``source`` for its inlets until it is stopped or its stream ends."""

    def __init__(self, what: str, source: Any, clock: Clock, scheduler: Scheduler, shared: bool = False) -> None:
        self.what = what
        self.shared = shared
        self.source = source
        self.clock = clock
        self.scheduler = scheduler
        self.decoder: Decoder = lambda b: b
        self.inlets: list[Inlet] = []
        self.stopped = threading.Event()
        self.driven = callable(getattr(source, "set_ready", None))
        self.acks = callable(getattr(source, "take_ack", None))
        self.connection_status = "connecting"
        self.ended = False
        self._opened = False
        self._backoff = 0.1
        self._task = Task(scheduler, self._turn) if self.driven else None
        self._thread: threading.Thread | None = None
        self._room = threading.Event()

    # -- inlets ----------------------------------------------------------------------------------
    def attach(self, inlet: Inlet) -> None:
        self.inlets = [*self.inlets, inlet]  # replaced, never changed: the reader iterates a copy

    def detach(self, inlet: Inlet) -> bool:
        """Stop feeding ``inlet``; True when no inlet is left."""
        self.inlets = [i for i in self.inlets if i is not inlet]
        return not self.inlets

    def decode_error(self, message: str) -> None:
        """A payload the stream's FORMAT cannot decode: counted on every rule's source node."""
        for inlet in self.inlets:
            failed(inlet.rule_id, inlet.metrics, ValueError(message), "decode")

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is not None:
            self._task.kick()
        else:
            self._thread = threading.Thread(target=self._run_thread, name=f"plutino-source-{self.what}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Take no more data in (what was taken goes on)."""
        self.stopped.set()
        self._room.set()

    def join(self, timeout: float) -> bool:
        """Wait for the reading in progress to end; False if it is still inside a plugin call."""
        deadline = time.monotonic() + timeout
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            return not self._thread.is_alive()
        task = self._task
        while task is not None and task.busy() and task.running_thread is not threading.current_thread():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def status(self) -> str:
        """The source's connection status; asked of a driven (built-in) source when wanted."""
        if self.driven and not self.stopped.is_set():
            self.connection_status = status_of(self.source)
        return self.connection_status

    def redelivered(self) -> int:
        value = getattr(self.source, "redelivered", 0)
        return value if isinstance(value, int) else 0

    def sessions_adopted(self) -> int | None:
        """The other hosts' sessions the source holds (an mqtt share group's takeover), or None."""
        value = getattr(self.source, "sessions_adopted", None)
        return value if isinstance(value, int) else None

    # -- reading ---------------------------------------------------------------------------------
    def _open(self) -> bool:
        try:
            self.source.open()
        except Exception as exc:
            for inlet in self.inlets:
                failed(inlet.rule_id, inlet.metrics, exc, "open")
            self.connection_status = "disconnected"
            return False
        self._opened = True
        if self._task is not None:
            self.source.set_ready(self._task.kick)
        return True

    def _turn(self) -> bool:
        """A driven feed's turn on the scheduler; True when there may be more to read."""
        if self.stopped.is_set() or self.ended:
            return False
        assert self._task is not None
        if not self._opened and not self._open():
            self.scheduler.call_later(self._backoff, self._task.kick)
            self._backoff = min(self._backoff * 2, MAX_BACKOFF_S)
            return False
        for _ in range(BUDGET):
            if self.stopped.is_set():
                return False
            box = self._blocked()
            if box is not None:
                box.wake_when_room(self._task.kick)
                return False
            if not self._read_one(0):
                return False
        return True

    def _run_thread(self) -> None:
        """A threaded feed's own thread."""
        while not self.stopped.is_set() and not self._open():
            self.stopped.wait(self._backoff)
            self._backoff = min(self._backoff * 2, MAX_BACKOFF_S)
        poll = StatusPoll(self.source)
        while not self.stopped.is_set() and not self.ended:
            box = self._blocked()
            if box is not None:
                self._room.clear()
                box.wake_when_room(self._room.set)
                self._room.wait(POLL_S)
                continue
            self._read_one(SOURCE_TIMEOUT_S)
            self.connection_status = poll()

    def _blocked(self) -> Any:
        for inlet in self.inlets:
            box = inlet.ops.blocked()
            if box is not None:
                return box
        return None

    def _read_one(self, timeout: float) -> bool:
        """Read one batch and hand it on; False when there was nothing (or the end, an error)."""
        src = self.source
        try:
            batch = src.next(timeout)
        except EndOfStream:
            self.ended = True
            for inlet in self.inlets:
                self._hand(inlet, END)
            return False
        except Exception as exc:
            for inlet in self.inlets:
                failed(inlet.rule_id, inlet.metrics, exc, "next")
            if self._task is not None:
                self.scheduler.call_later(POLL_S, self._task.kick)
            else:
                self.stopped.wait(POLL_S)
            return False
        if batch is None:
            return False
        if isinstance(batch, pa.Table):
            if not batch.num_rows:
                return True
            batch = batch.combine_chunks().to_batches()[0]
        ack = src.take_ack() if self.acks else None
        self._fan_out(batch, Delivery(ack) if ack is not None else None)
        return True

    def _fan_out(self, batch: pa.RecordBatch, delivery: Delivery | None) -> None:
        inlets = self.inlets
        n_in = batch.num_rows
        started = time.perf_counter()
        for inlet in inlets:
            inlet.metrics.begin(n_in)
            inlet.active = True  # taken in for it: a stop waits for the hand-over (or counts the rows)
        try:
            self._decode_and_hand(inlets, batch, n_in, started, delivery)
        finally:
            for inlet in inlets:
                inlet.active = False

    def _decode_and_hand(self, inlets: list[Inlet], batch: pa.RecordBatch, n_in: int, started: float,
                         delivery: Delivery | None) -> None:
        try:
            rows = self.decoder(batch)
        except Exception as exc:
            for inlet in inlets:
                failed(inlet.rule_id, inlet.metrics, exc, "decode")
            rows = None
        latency = int((time.perf_counter() - started) * 1_000_000)
        if rows is not None and rows.num_rows:
            arrival = self.clock.now_ms()
            n = rows.num_rows
            for inlet in inlets:
                inlet.metrics.process_latency_us = latency
                if delivery is not None:
                    delivery.hold()
                if self._hand(inlet, ("data", rows, arrival, (delivery,) if delivery is not None else NONE)):
                    inlet.metrics.records_out += n
        if delivery is not None:
            delivery.release()  # the feed's own hold: acknowledged once every rule is done

    def _hand(self, inlet: Inlet, item: Any) -> bool:
        """Give ``item`` to the rule unless it stopped reading. A feed of its own then closes
        without acknowledging it (the source replays it); a shared feed goes on for the other
        rules, whose acknowledgements come in order after this one, so it is released."""
        inlet.active = True
        try:
            if not inlet.detached:
                return inlet.ops.submit(item)
            if item is not END:
                inlet.ops.refused(item)  # its source counted the rows in: they are undelivered
                if self.shared:
                    release_all(item[3])
            return False
        finally:
            inlet.active = False


__all__ = ["SOURCE_TIMEOUT_S", "Inlet", "SourceFeed"]
