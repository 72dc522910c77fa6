"""A running rule: threads, bounded queues, metrics and the rule's life cycle.

    source thread --queue--> operator thread --queue--> sink thread (one per action)

The source thread pulls batches (``source.next(timeout)``), decodes them into the stream's
rows and stamps their arrival time; the operator thread runs the :class:`Pipeline`; each sink
thread writes to its sink. Queues are bounded (the rule's ``bufferLength``, in batches), so a
slow sink slows the operators and then the source: backpressure, not unbounded memory.
Native calls release the GIL, so the threads run plugin code in parallel.

A rule without a window has no clock ticks to take, so its operators run on the source thread
(``source thread --queue--> sink thread``). And a sink that is caught up (nothing queued, its
thread idle) and quick (its last write took under ``INLINE_WRITE_S``) is written on the
operators' thread; any other batch goes through its queue and thread, in order. A hand-off
between threads costs several context switches per batch on a busy core, more than such a
write, and lets the source run ahead of the cache (bench/pipeline.py, docs/performance.md).

A failure inside a plugin is counted in the node's metrics and the rule keeps running: a
source's ``next`` error is retried, a function's error drops that batch, a sink's write error
is retried ``retryCount`` times and then drops that batch. A bounded source's end
(EndOfStream) flushes the windows, drains the sinks and stops the rule.

Stopping drains: the source stops taking data in first, then the rows it already took go
through the operators and out of the sinks for up to the rule's ``drainTimeout``; whatever is
still queued after that is counted, per node, as ``records_undelivered_total`` in the status,
so a stop never loses rows silently.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import pyarrow as pa
from plutino_contract.protocols import Context, EndOfStream

from .clock import Clock
from .decode import Decoder, make_decoder
from .errors import RuleError
from .metrics import NodeMetrics
from .pipeline import Pipeline
from .planner import QueryPlan
from .rules import Action, RuleDef

_log = logging.getLogger("plutino.engine")

_END = ("end",)
POLL_S = 0.1  # how long a thread waits before looking at the stop flag again
SOURCE_TIMEOUT_S = 0.1  # the timeout passed to source.next()
TICK_MS = 50  # processing-time windows close within this much of their end
JOIN_S = 10.0  # how long a stop waits for a thread stuck in a plugin call
INLINE_WRITE_S = 20e-6  # a sink whose last write took less is written on the operators' thread


@dataclass
class SinkBinding:
    """An action with its plugin and the config to create it with."""

    action: Action
    plugin: Any
    config: Mapping[str, Any]


class RuleRuntime:
    """One start of a rule, from ``start()`` to its stop. Not restartable: make a new one."""

    def __init__(
        self,
        rule: RuleDef,
        plan: QueryPlan,
        source_plugin: Any,
        source_config: Mapping[str, Any],
        sinks: list[SinkBinding],
        clock: Clock,
    ) -> None:
        self.rule = rule
        self.plan = plan
        self.clock = clock
        self._source_plugin = source_plugin
        self._source_config = dict(source_config)
        self._bindings = sinks
        self.pipeline = Pipeline(plan, event_time=rule.is_event_time, late_tolerance_ms=rule.late_tolerance_ms)
        self.pipeline.on_error = self._stage_failed
        self._inline_ops = plan.window is None  # operators on the source thread (see above)
        self.source_metrics = NodeMetrics(f"source_{plan.stream.name}_0")
        self.sink_metrics = [NodeMetrics(f"sink_{b.action.sink}_{i}_0") for i, b in enumerate(sinks)]
        self.state = "stopped"
        self.last_start_ms = 0
        self.last_stop_ms = 0
        self._stop = threading.Event()
        self._stop_source = threading.Event()  # set first when stopping: no new data in
        self._threads: list[threading.Thread] = []
        self._source: Any = None
        self._sinks: list[Any] = []
        self._decoder: Decoder = lambda b: b
        self._ops_queue: queue.Queue[Any] = queue.Queue(rule.buffer_length)
        self._sink_queues: list[queue.Queue[Any]] = [
            queue.Queue(b.action.buffer_length or rule.buffer_length) for b in sinks
        ]
        self._sink_quick = [False] * len(sinks)  # the last write took < INLINE_WRITE_S
        self._inline_writing = -1  # the sink the operators' thread is writing to, if any
        self._unsubscribe: Callable[[], None] | None = None
        self._sinks_running = 0
        self._lock = threading.Lock()
        self._closed = False
        # items queued to / finished by the operator thread and each sink thread (wait_idle)
        self._idle = threading.Condition()
        self._queued = [0] * (1 + len(sinks))
        self._done = [0] * (1 + len(sinks))
        # rows a stop left behind, by node (0: waiting for the operators, 1+i: for sink i)
        self._undelivered = [0] * (1 + len(sinks))

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Create the instances (config errors raise RuleError here) and start the threads."""
        rule_id = self.rule.id
        try:
            self._source = self._make_source()
            self._decoder = make_decoder(self.plan.stream, self._source.schema(), self._decode_error)
            self._sinks = self._make_sinks()
            for use in self.plan.uses:
                try:
                    use.open(rule_id, f"function_{use.name}_{use.index}")
                except Exception as exc:
                    raise RuleError(
                        f"rule '{rule_id}': function '{use.name}' of plugin '{use.plugin}' could not start: {exc}"
                    ) from None
        except BaseException:
            self._close_instances()
            raise
        self._stop.clear()
        self._stop_source.clear()
        self.state = "running"
        self.last_start_ms = int(time.time() * 1000)
        self._sinks_running = len(self._sinks)
        window = self.plan.window
        if window is not None and window.is_time and not self.rule.is_event_time:
            self._unsubscribe = self.clock.subscribe(self._tick, TICK_MS)
        self._spawn(self._source_loop, "source")
        if not self._inline_ops:
            self._spawn(self._ops_loop, "ops")
        for i in range(len(self._sinks)):
            self._spawn(lambda i=i: self._sink_loop(i), f"sink{i}")

    def probe(self) -> None:
        """Create and close the source and sink instances: their configuration is checked by
        the plugins themselves, and no I/O happens (create() does no slow work)."""
        source = self._make_source()
        _quietly(source.close)
        for sink in self._make_sinks():
            _quietly(sink.close)

    def _make_source(self) -> Any:
        plugin = self._source_plugin
        ctx = Context(plugin_name=plugin.name, rule_id=self.rule.id, op_id="source")
        return _create(plugin, self._source_config, ctx, f"source '{plugin.name}' of stream {self.plan.stream.name}")

    def _make_sinks(self) -> list[Any]:
        made: list[Any] = []
        try:
            for i, b in enumerate(self._bindings):
                ctx = Context(plugin_name=b.plugin.name, rule_id=self.rule.id, op_id=f"sink_{b.action.sink}_{i}")
                made.append(_create(b.plugin, b.config, ctx, f"sink '{b.action.sink}' (action {i})"))
        except BaseException:
            for sink in made:
                _quietly(sink.close)
            raise
        return made

    def stop_source(self) -> None:
        """The first step of a stop: the source takes no more data in (the rows it already
        took keep going). RuleManager.shutdown() calls it on every rule before stopping them,
        so their drains overlap."""
        self._stop_source.set()

    def stop(self, reason: str = "", drain_s: float | None = None) -> None:
        """Stop the source, drain for up to ``drain_s`` seconds (default: the rule's
        drainTimeout), then stop the threads, count what was left undelivered, flush and close
        every instance. Idempotent."""
        self.stop_source()
        if not self._stop.is_set():
            self._drain(self.rule.drain_timeout_ms / 1000 if drain_s is None else drain_s)
        self._stop.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        current = threading.current_thread()
        for t in self._threads:
            if t is not current:
                t.join(timeout=JOIN_S)
        self._count_left_behind()
        self._close_instances()
        with self._lock:
            if self.state == "running":
                self.state = f"stopped: {reason}" if reason else "stopped"
            self.last_stop_ms = int(time.time() * 1000)

    def _drain(self, seconds: float) -> None:
        """Let the rows already taken in reach the sinks, for at most ``seconds``."""
        deadline = time.monotonic() + seconds
        source = next((t for t in self._threads if t.name.endswith("-source")), None)
        if source is not None and source is not threading.current_thread():
            source.join(timeout=max(0.0, deadline - time.monotonic()))
        self.wait_idle(max(0.0, deadline - time.monotonic()))

    def _count_left_behind(self) -> None:
        """After the threads stopped: count the rows still queued as undelivered, per node."""
        for node, q in enumerate([self._ops_queue, *self._sink_queues]):
            while True:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                self._undelivered[node] += _rows_of(item)
        for node, rows in enumerate(self._undelivered):
            if rows:
                metrics = self.source_metrics if node == 0 else self.sink_metrics[node - 1]
                metrics.extra["records_undelivered_total"] = rows
                _log.warning("rule %s: %d rows were not delivered by %s when the rule stopped (drainTimeout"
                             " %d ms)", self.rule.id, rows, "the operators" if node == 0 else metrics.name,
                             self.rule.drain_timeout_ms)

    def _spawn(self, target: Callable[[], None], what: str) -> None:
        t = threading.Thread(target=target, name=f"plutino-rule-{self.rule.id}-{what}", daemon=True)
        self._threads.append(t)
        t.start()

    def _close_instances(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # An instance whose thread is still inside a plugin call (one that ignored its timeout)
        # is left open: the contract never has the host call one instance from two threads.
        alive = {t.name.rsplit("-", 1)[-1] for t in self._threads if t.is_alive() and t is not threading.current_thread()}
        for what in sorted(alive):
            _log.error("rule %s: the %s thread is still inside a plugin call %g s after the stop; its"
                       " instances are left open", self.rule.id, what, JOIN_S)
        if ("source" if self._inline_ops else "ops") not in alive:
            for use in self.plan.uses:
                use.close()
        writer = "source" if self._inline_ops else "ops"
        for i, sink in enumerate(self._sinks):
            if f"sink{i}" not in alive and not (self._inline_writing == i and writer in alive):
                _quietly(sink.flush)
                _quietly(sink.close)
        if self._source is not None and "source" not in alive:
            _quietly(self._source.close)

    # -- threads ---------------------------------------------------------------------------
    def _put(self, q: queue.Queue[Any], item: Any, node: int) -> bool:
        """Put ``item`` for ``node`` (0: the operators, 1+i: sink i), waiting while ``q`` is full;
        False when the rule stopped meanwhile."""
        with self._idle:
            self._queued[node] += 1
        while not self._stop.is_set():
            try:
                q.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        with self._idle:
            self._queued[node] -= 1
            self._undelivered[node] += _rows_of(item)
            self._idle.notify_all()
        return False

    def _finished_item(self, node: int) -> None:
        with self._idle:
            self._done[node] += 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far went through the operators and was written by
        the sinks (or the rule stopped); False on timeout. For tests and orderly hand-overs."""

        def idle() -> bool:
            return self._queued == self._done or self._stop.is_set()

        with self._idle:
            return self._idle.wait_for(idle, timeout)

    def _get(self, q: queue.Queue[Any]) -> Any:
        while not self._stop.is_set():
            try:
                return q.get(timeout=POLL_S)
            except queue.Empty:
                continue
        return None

    def _tick(self, now_ms: int) -> None:
        self._put(self._ops_queue, ("tick", now_ms), 0)

    def _source_loop(self) -> None:
        m = self.source_metrics
        src = self._source
        backoff = 0.1
        while not self._stopping_source():
            try:
                src.open()
                break
            except Exception as exc:
                self._failed(m, exc, "open")
                m.connection_status = "disconnected"
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        while not self._stopping_source():
            try:
                batch = src.next(SOURCE_TIMEOUT_S)
            except EndOfStream:
                m.connection_status = _status(src)
                self._to_ops(_END)
                return
            except Exception as exc:
                self._failed(m, exc, "next")
                self._stop.wait(POLL_S)
                continue
            m.connection_status = _status(src)
            if batch is None:
                continue
            if isinstance(batch, pa.Table):
                batch = batch.combine_chunks().to_batches()[0] if batch.num_rows else None
                if batch is None:
                    continue
            started = m.begin(batch.num_rows)
            try:
                rows = self._decoder(batch)
            except Exception as exc:
                self._failed(m, exc, "decode")
                continue
            m.process_latency_us = int((time.perf_counter() - started) * 1_000_000)
            if rows.num_rows == 0:
                continue
            arrival = self.clock.now_ms()
            m.buffer_length = self._ops_queue.qsize()
            n = rows.num_rows
            if not self._to_ops(("data", rows, arrival)):
                return
            m.records_out += n
            del batch, rows  # freed now, not when the next batch arrives: its memory is reused hot

    def _stopping_source(self) -> bool:
        return self._stop_source.is_set() or self._stop.is_set()

    def _to_ops(self, item: Any) -> bool:
        """Hand ``item`` to the operators: queue it, or run them here when they are inline.
        False when the rule stopped meanwhile."""
        if not self._inline_ops:
            return self._put(self._ops_queue, item, 0)
        self._operate(item, inline=True)
        return not self._stop.is_set()

    def _ops_loop(self) -> None:
        while True:
            item = self._get(self._ops_queue)
            if item is None or self._operate(item):
                return

    def _operate(self, item: Any, inline: bool = False) -> bool:
        """Run the operators on one item (queued, or ``inline`` on the source thread, which
        waits for them: no accounting for wait_idle) and hand their output to the sinks; True
        when the operators are done (the end of the stream, or the rule stopped)."""
        pipeline = self.pipeline
        kind = item[0]
        try:
            if kind == "data":
                out = pipeline.on_batch(item[1], item[2])
            elif kind == "tick":
                out = pipeline.on_tick(item[1])
            else:
                out = pipeline.on_end()
        except Exception as exc:  # the stages catch their own errors; this is a bug guard
            _log.exception("rule %s: operator thread error", self.rule.id)
            self.source_metrics.error(exc)
            out = []
        for batch in out:
            if batch.num_rows == 0:
                continue
            for i, q in enumerate(self._sink_queues):
                if self._sink_quick[i] and self._queued[1 + i] == self._done[1 + i] and not self._stop.is_set():
                    self._inline_writing = i  # caught up and quick: written here (see above)
                    self._deliver(i, batch)
                    self._inline_writing = -1
                else:
                    self._put(q, batch, 1 + i)  # once stopped, each put just counts the rows left behind
        if self._stop.is_set():
            return True
        if kind == "end":
            for i, q in enumerate(self._sink_queues):
                self._put(q, _END, 1 + i)
        if not inline:
            self._finished_item(0)
        return kind == "end"

    def _sink_loop(self, i: int) -> None:
        sink = self._sinks[i]
        m = self.sink_metrics[i]
        q = self._sink_queues[i]
        try:
            sink.open()
            m.connection_status = _status(sink)
        except Exception as exc:
            self._failed(m, exc, "open")
            m.connection_status = "disconnected"
        while True:
            item = self._get(q)
            if item is None:
                return
            if item is _END:
                _quietly(sink.flush)
                self._finished_item(1 + i)
                self._sink_finished()
                return
            m.buffer_length = q.qsize()
            self._deliver(i, item)
            self._finished_item(1 + i)  # last: from here on the operators' thread may write inline

    def _deliver(self, i: int, batch: pa.RecordBatch) -> None:
        """Write ``batch`` to sink ``i`` (retrying as its action says), timed in its metrics."""
        sink, m = self._sinks[i], self.sink_metrics[i]
        started = m.begin(batch.num_rows)
        if self._write(sink, batch, self._bindings[i].action, m):
            m.end(started, batch.num_rows)
        self._sink_quick[i] = time.perf_counter() - started < INLINE_WRITE_S
        m.connection_status = _status(sink)

    def _write(self, sink: Any, batch: pa.RecordBatch, action: Action, m: NodeMetrics) -> bool:
        attempts = 1 + action.retry_count
        for attempt in range(attempts):
            try:
                sink.write(batch)
                return True
            except OSError as exc:
                if attempt + 1 < attempts:
                    if self._stop.wait(action.retry_interval_ms / 1000):
                        node = 1 + self.sink_metrics.index(m)
                        with self._idle:  # the rule stopped while this batch waited for its retry
                            self._undelivered[node] += batch.num_rows
                        return False
                    m.add("retries_total")
                    continue
                self._failed(m, exc, "write")
                return False
            except Exception as exc:
                self._failed(m, exc, "write")
                return False
        return False

    def _sink_finished(self) -> None:
        with self._lock:
            self._sinks_running -= 1
            last = self._sinks_running == 0
        if last:  # the bounded stream has been fully processed
            with self._lock:
                if self.state == "running":
                    self.state = "stopped: end of stream"
            threading.Thread(target=self.stop, name=f"plutino-rule-{self.rule.id}-finish", daemon=True).start()

    def _failed(self, m: NodeMetrics, exc: BaseException, call: str) -> None:
        m.error(exc)
        _log.warning("rule %s: %s %s failed: %s", self.rule.id, m.name, call, exc)

    def _decode_error(self, message: str) -> None:
        """A payload the stream's FORMAT cannot decode: counted and shown on the source; the
        other payloads of its batch go on."""
        self._failed(self.source_metrics, ValueError(message), "decode")

    def _stage_failed(self, m: NodeMetrics, exc: BaseException) -> None:
        _log.warning("rule %s: %s failed, batch dropped: %s", self.rule.id, m.name, exc)

    # -- status ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """eKuiper's ``GET /rules/{id}/status``: the state, then every node's metrics."""
        out: dict[str, Any] = {
            "status": self.state,
            "lastStartTimestamp": self.last_start_ms,
            "lastStopTimestamp": self.last_stop_ms,
        }
        self.source_metrics.buffer_length = self._ops_queue.qsize()
        out.update(self.source_metrics.flat())
        for node in self.pipeline.nodes:
            out.update(node.flat())
        for m, q in zip(self.sink_metrics, self._sink_queues):
            m.buffer_length = q.qsize()
            out.update(m.flat())
        for use in self.plan.uses:
            prefix = f"function_{use.name}_{use.index}"
            out[f"{prefix}_plugin"] = use.plugin
            out[f"{prefix}_calls_total"] = use.calls
            out[f"{prefix}_exceptions_total"] = use.errors
        return out


def _rows_of(item: Any) -> int:
    """Rows in a queued item: a sink's batch, or the operators' ("data", rows, arrival)."""
    if isinstance(item, (pa.RecordBatch, pa.Table)):
        return item.num_rows
    if isinstance(item, tuple) and len(item) == 3 and item[0] == "data":
        return int(item[1].num_rows)
    return 0


def _create(plugin: Any, config: Mapping[str, Any], ctx: Context, what: str) -> Any:
    try:
        return plugin.create(dict(config), ctx)
    except Exception as exc:
        raise RuleError(f"rule '{ctx.rule_id}': {what} refused its configuration: {exc}") from None


def _status(instance: Any) -> str:
    try:
        return str(instance.status())
    except Exception:
        return "disconnected"


def _quietly(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception as exc:
        _log.warning("ignored error while closing: %s", exc)


__all__ = ["RuleRuntime", "SinkBinding"]
