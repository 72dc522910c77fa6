"""A running rule: its life cycle (start, stop, status) and the wiring of its parts.

    source thread --queue--> operator thread --queue--> sink thread (one per action)

The source thread pulls batches, decodes them into the stream's rows and stamps their arrival
time (:mod:`.source_reader`); the operator thread runs the :class:`Pipeline`
(:mod:`.ops_runner`); each sink thread writes to its sink (:mod:`.sink_writer`). Queues are
bounded (the rule's ``bufferLength``, in batches; :mod:`.handoff`), so a slow sink slows the
operators and then the source: backpressure, not unbounded memory. Native calls release the
GIL, so the threads run plugin code in parallel.

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
so a stop never loses rows silently. A thread still inside a plugin call after the stop
(:mod:`.rule_threads`) leaves the instances it may be in open.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from plutino_contract.protocols import Context

from .clock import Clock
from .decode import Decoder, make_decoder
from .errors import RuleError
from .handoff import POLL_S, Handoffs  # noqa: F401  (POLL_S: importable from here, as before)
from .instances import create, failed, quietly
from .metrics import NodeMetrics
from .ops_runner import OpsRunner
from .pipeline import Pipeline
from .planner import QueryPlan
from .rule_threads import JOIN_S, RuleThread
from .rules import Action, RuleDef
from .sink_writer import INLINE_WRITE_S, SinkWriter  # noqa: F401  (INLINE_WRITE_S: as before)
from .source_reader import SOURCE_TIMEOUT_S, SourceReader  # noqa: F401  (SOURCE_TIMEOUT_S: as before)

_log = logging.getLogger("plutino.engine")

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
        self.pipeline = Pipeline(plan, event_time=rule.is_event_time, late_tolerance_ms=rule.late_tolerance_ms,
                                 window_max_rows=rule.window_max_rows, window_max_bytes=rule.window_max_bytes)
        self.pipeline.on_error = self._stage_failed
        if self.pipeline.window is not None:
            self.pipeline.window.on_dropped = self._window_full
        self._dropped_logged_at = 0.0
        self._inline_ops = plan.window is None  # operators on the source thread (see above)
        self.source_metrics = NodeMetrics(f"source_{plan.stream.name}_0")
        self.sink_metrics = [NodeMetrics(f"sink_{b.action.sink}_{i}_0") for i, b in enumerate(sinks)]
        self.state = "stopped"
        self.last_start_ms = 0
        self.last_stop_ms = 0
        self._stop = threading.Event()
        self._stop_source = threading.Event()  # set first when stopping: no new data in
        self._threads: list[RuleThread] = []
        self._source: Any = None
        self._writers: list[SinkWriter] = []  # one per sink instance, made by start()
        self._decoder: Decoder = lambda b: b
        self._handoffs = Handoffs(
            rule.buffer_length, [b.action.buffer_length or rule.buffer_length for b in sinks], self._stop
        )
        self._ops_queue = self._handoffs.ops
        self._sink_queues = self._handoffs.sinks
        self._unsubscribe: Callable[[], None] | None = None
        self._sinks_running = 0
        self._lock = threading.Lock()
        self._closed = False

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Create the instances (config errors raise RuleError here) and start the threads."""
        rule_id = self.rule.id
        try:
            self._source = self._make_source()
            self._decoder = make_decoder(self.plan.stream, self._source.schema(), self._decode_error)
            sinks = self._make_sinks()
            self._writers = [
                SinkWriter(rule_id, i, sink, b.action, m, self._handoffs, self._stop, self._sink_finished)
                for i, (sink, b, m) in enumerate(zip(sinks, self._bindings, self.sink_metrics))
            ]
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
        ops = OpsRunner(rule_id, self.pipeline, self._writers, self._handoffs, self._stop, self.source_metrics,
                        inline=self._inline_ops)
        reader = SourceReader(rule_id, self._source, self._decoder, self.source_metrics, self.clock, ops.submit,
                              self._ops_queue.qsize, self._stop, self._stop_source)
        self._stop.clear()
        self._stop_source.clear()
        self.state = "running"
        self.last_start_ms = int(time.time() * 1000)
        self._sinks_running = len(self._writers)
        window = self.plan.window
        if window is not None and window.is_time and not self.rule.is_event_time:
            self._unsubscribe = self.clock.subscribe(ops.tick, TICK_MS)
        self._spawn(RuleThread(rule_id, "source", reader.run, operators=ops if self._inline_ops else None))
        if not self._inline_ops:
            self._spawn(RuleThread(rule_id, "ops", ops.run, operators=ops))
        for w in self._writers:
            self._spawn(RuleThread(rule_id, f"sink{w.index}", w.run, sink=w.index))

    def probe(self) -> None:
        """Create and close the source and sink instances: their configuration is checked by
        the plugins themselves, and no I/O happens (create() does no slow work)."""
        source = self._make_source()
        quietly(source.close)
        for sink in self._make_sinks():
            quietly(sink.close)

    def _make_source(self) -> Any:
        plugin = self._source_plugin
        ctx = Context(plugin_name=plugin.name, rule_id=self.rule.id, op_id="source")
        return create(plugin, self._source_config, ctx, f"source '{plugin.name}' of stream {self.plan.stream.name}")

    def _make_sinks(self) -> list[Any]:
        made: list[Any] = []
        try:
            for i, b in enumerate(self._bindings):
                ctx = Context(plugin_name=b.plugin.name, rule_id=self.rule.id, op_id=f"sink_{b.action.sink}_{i}")
                made.append(create(b.plugin, b.config, ctx, f"sink '{b.action.sink}' (action {i})"))
        except BaseException:
            for sink in made:
                quietly(sink.close)
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
        for t in self._threads:
            t.join(JOIN_S)
        self._count_left_behind()
        self._close_instances()
        with self._lock:
            if self.state == "running":
                self.state = f"stopped: {reason}" if reason else "stopped"
            self.last_stop_ms = int(time.time() * 1000)

    def _drain(self, seconds: float) -> None:
        """Let the rows already taken in reach the sinks, for at most ``seconds``."""
        deadline = time.monotonic() + seconds
        source = next((t for t in self._threads if t.role == "source"), None)
        if source is not None:
            source.join(max(0.0, deadline - time.monotonic()))
        self.wait_idle(max(0.0, deadline - time.monotonic()))

    def _count_left_behind(self) -> None:
        """After the threads stopped: count the rows still queued as undelivered, per node."""
        for node, rows in enumerate(self._handoffs.left_behind()):
            if rows:
                metrics = self.source_metrics if node == 0 else self.sink_metrics[node - 1]
                metrics.extra["records_undelivered_total"] = rows
                _log.warning("rule %s: %d rows were not delivered by %s when the rule stopped (drainTimeout"
                             " %d ms)", self.rule.id, rows, "the operators" if node == 0 else metrics.name,
                             self.rule.drain_timeout_ms)

    def _spawn(self, thread: RuleThread) -> None:
        self._threads.append(thread)
        thread.start()

    def _close_instances(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # An instance whose thread is still inside a plugin call (one that ignored its timeout)
        # is left open: the contract never has the host call one instance from two threads.
        stuck = sorted((t for t in self._threads if t.stuck()), key=lambda t: t.role)
        for t in stuck:
            _log.error("rule %s: the %s thread is still inside a plugin call %g s after the stop; its"
                       " instances are left open", self.rule.id, t.role, JOIN_S)
        if not any(t.runs_operators for t in stuck):
            for use in self.plan.uses:
                use.close()
        in_use = {i for t in stuck for i in t.sinks_in_use()}
        for w in self._writers:
            if w.index not in in_use:
                quietly(w.sink.flush)
                quietly(w.sink.close)
        if self._source is not None and not any(t.role == "source" for t in stuck):
            quietly(self._source.close)

    # -- the threads' callbacks ------------------------------------------------------------
    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far went through the operators and was written by
        the sinks (or the rule stopped); False on timeout. For tests and orderly hand-overs."""
        return self._handoffs.wait_idle(timeout)

    def _sink_finished(self) -> None:
        with self._lock:
            self._sinks_running -= 1
            last = self._sinks_running == 0
        if last:  # the bounded stream has been fully processed
            with self._lock:
                if self.state == "running":
                    self.state = "stopped: end of stream"
            threading.Thread(target=self.stop, name=f"plutino-rule-{self.rule.id}-finish", daemon=True).start()

    def _decode_error(self, message: str) -> None:
        """A payload the stream's FORMAT cannot decode: counted and shown on the source; the
        other payloads of its batch go on."""
        failed(self.rule.id, self.source_metrics, ValueError(message), "decode")

    def _window_full(self, dropped: int) -> None:
        """The window held more than its cap: its oldest rows were dropped (counted in the
        window node's ``records_dropped_total``); said in the log at most every 10 s."""
        now = time.monotonic()
        if now - self._dropped_logged_at >= 10:
            self._dropped_logged_at = now
            window = self.pipeline.window
            assert window is not None
            _log.warning("rule %s: its window holds more than windowMaxRows %d rows or windowMaxBytes %d bytes;"
                         " the oldest rows are dropped (%d so far, records_dropped_total of %s)", self.rule.id,
                         window.max_rows, window.max_bytes, window.metrics.extra.get("records_dropped_total", 0),
                         window.metrics.name)

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


__all__ = ["RuleRuntime", "SinkBinding"]
