"""A running rule: threads, bounded queues, metrics and the rule's life cycle.

    source thread --queue--> operator thread --queue--> sink thread (one per action)

The source thread pulls batches (``source.next(timeout)``), decodes them into the stream's
rows and stamps their arrival time; the operator thread runs the :class:`Pipeline`; each sink
thread writes to its sink. Queues are bounded (the rule's ``bufferLength``, in batches), so a
slow sink slows the operators and then the source: backpressure, not unbounded memory.
Native calls release the GIL, so the threads run plugin code in parallel.

A failure inside a plugin is counted in the node's metrics and the rule keeps running: a
source's ``next`` error is retried, a function's error drops that batch, a sink's write error
is retried ``retryCount`` times and then drops that batch. A bounded source's end
(EndOfStream) flushes the windows, drains the sinks and stops the rule.
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
        self.source_metrics = NodeMetrics(f"source_{plan.stream.name}_0")
        self.sink_metrics = [NodeMetrics(f"sink_{b.action.sink}_{i}_0") for i, b in enumerate(sinks)]
        self.state = "stopped"
        self.last_start_ms = 0
        self.last_stop_ms = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._source: Any = None
        self._sinks: list[Any] = []
        self._decoder: Decoder = lambda b: b
        self._ops_queue: queue.Queue[Any] = queue.Queue(rule.buffer_length)
        self._sink_queues: list[queue.Queue[Any]] = [
            queue.Queue(b.action.buffer_length or rule.buffer_length) for b in sinks
        ]
        self._unsubscribe: Callable[[], None] | None = None
        self._sinks_running = 0
        self._lock = threading.Lock()
        self._closed = False
        # items queued to / finished by the operator thread and each sink thread (wait_idle)
        self._idle = threading.Condition()
        self._queued = [0] * (1 + len(sinks))
        self._done = [0] * (1 + len(sinks))

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
        self.state = "running"
        self.last_start_ms = int(time.time() * 1000)
        self._sinks_running = len(self._sinks)
        window = self.plan.window
        if window is not None and window.is_time and not self.rule.is_event_time:
            self._unsubscribe = self.clock.subscribe(self._tick, TICK_MS)
        self._spawn(self._source_loop, "source")
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

    def stop(self, reason: str = "") -> None:
        """Stop the threads, flush and close every instance. Idempotent."""
        self._stop.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        current = threading.current_thread()
        for t in self._threads:
            if t is not current:
                t.join(timeout=10)
        self._close_instances()
        with self._lock:
            if self.state == "running":
                self.state = f"stopped: {reason}" if reason else "stopped"
            self.last_stop_ms = int(time.time() * 1000)

    def _spawn(self, target: Callable[[], None], what: str) -> None:
        t = threading.Thread(target=target, name=f"plutino-rule-{self.rule.id}-{what}", daemon=True)
        self._threads.append(t)
        t.start()

    def _close_instances(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for use in self.plan.uses:
            use.close()
        for sink in self._sinks:
            _quietly(sink.flush)
            _quietly(sink.close)
        if self._source is not None:
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
        while not self._stop.is_set():
            try:
                src.open()
                break
            except Exception as exc:
                self._failed(m, exc, "open")
                m.connection_status = "disconnected"
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        while not self._stop.is_set():
            try:
                batch = src.next(SOURCE_TIMEOUT_S)
            except EndOfStream:
                m.connection_status = _status(src)
                self._put(self._ops_queue, _END, 0)
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
            if not self._put(self._ops_queue, ("data", rows, arrival), 0):
                return
            m.records_out += rows.num_rows

    def _ops_loop(self) -> None:
        pipeline = self.pipeline
        while True:
            item = self._get(self._ops_queue)
            if item is None:
                return
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
                    if not self._put(q, batch, 1 + i):
                        return
            if kind == "end":
                for i, q in enumerate(self._sink_queues):
                    self._put(q, _END, 1 + i)
            self._finished_item(0)
            if kind == "end":
                return

    def _sink_loop(self, i: int) -> None:
        sink = self._sinks[i]
        m = self.sink_metrics[i]
        action = self._bindings[i].action
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
            started = m.begin(item.num_rows)
            if self._write(sink, item, action, m):
                m.end(started, item.num_rows)
            m.connection_status = _status(sink)
            self._finished_item(1 + i)

    def _write(self, sink: Any, batch: pa.RecordBatch, action: Action, m: NodeMetrics) -> bool:
        attempts = 1 + action.retry_count
        for attempt in range(attempts):
            try:
                sink.write(batch)
                return True
            except OSError as exc:
                if attempt + 1 < attempts and not self._stop.wait(action.retry_interval_ms / 1000):
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
