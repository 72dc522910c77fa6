"""A running rule: its life cycle (start, stop, status) and the wiring of its parts.

    source feed --> operators --mailbox--> sink (one mailbox per action)

A rule owns no thread: its source feed (:mod:`.source_reader`), operators (:mod:`.ops_runner`)
and sinks (:mod:`.sink_writer`) run as tasks on the process's :class:`~.scheduler.Scheduler`.
A rule without a window runs its operators in the feed's turn; one with a window has an
operators' mailbox, which the clock's ticks also reach. A caught-up, quick sink is written by
the operators themselves. Mailboxes hold up to ``bufferLength`` batches (:mod:`.handoff`): a
slow sink holds back the operators and then the source. A ``SHARED="true"`` stream gives its
rules one feed (:mod:`.shared_sources`); a JOIN's other inputs have feeds of their own
(:mod:`.join_feeds`).

A failure inside a plugin is counted in the node's metrics and the rule keeps running (with
``sendError``, its error also goes to every sink as a row ``{"error": "..."}``). A bounded
source's end flushes the windows, drains the sinks and stops the rule.

Stopping drains: the rule stops reading, then the rows it took go through the operators and
out of the sinks for up to ``drainTimeout``; what is still queued is counted, per node, as
``records_undelivered_total``, and a source that can replay it (:mod:`.delivery`) is not told
it was delivered. A node still inside a plugin call ``JOIN_S`` after the stop leaves its
instances open: the contract never has the host call one instance from two threads at once.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from plutino.io.sink_props import with_sink_props
from plutino_contract.protocols import Context

from .clock import Clock
from .decode import make_decoder
from .delivery import release_all
from .error_log import ErrorLog
from .errors import RuleError
from .handoff import Handoffs
from .instances import create, quietly
from .join_feeds import JoinFeeds, JoinSource
from .meta_functions import enable_meta
from .metrics import NodeMetrics, SinkMetrics
from .ops_runner import OpsRunner
from .pipeline import Pipeline, RuleStopped
from .planner import QueryPlan
from .rule_status import rule_status
from .rules import Action, RuleDef
from .scheduler import Scheduler, default_scheduler
from .shared_sources import JOIN_S, SharedFeeds
from .sink_writer import ErrorSender, SinkWriter
from .source_reader import Inlet, SourceFeed

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
        scheduler: Scheduler | None = None,
        shared_feeds: SharedFeeds | None = None,
        join_sources: list[JoinSource] | None = None,
    ) -> None:
        self.rule = rule
        self.plan = plan
        self.clock = clock
        self.scheduler = scheduler or default_scheduler()
        self._shared_feeds = shared_feeds if plan.stream.option("SHARED") in ("true", "TRUE", "True") else None
        self._source_plugin = source_plugin
        self._source_config = dict(source_config)
        self._bindings = sinks
        self.pipeline = Pipeline(plan, event_time=rule.is_event_time, late_tolerance_ms=rule.late_tolerance_ms,
                                 window_max_rows=rule.window_max_rows, window_max_bytes=rule.window_max_bytes)
        self.pipeline.on_error = self._stage_failed
        self._errors = ErrorSender() if rule.send_error else None  # the rule option sendError
        self._joins = None if plan.join is None else JoinFeeds(rule.id, plan.join, join_sources or [],
                                                               plan.window is not None, clock, self.scheduler)
        if self.pipeline.window is not None:
            self.pipeline.window.on_dropped = self._window_full
        self._error_log = ErrorLog(_log)  # runtime errors, each logged at most every 10 s
        self._inline_ops = plan.window is None  # operators in the feed's turn (see above)
        self.source_metrics = NodeMetrics(f"source_{plan.stream.name}_0")
        self.sink_metrics = [SinkMetrics.for_config(f"sink_{b.action.sink}_{i}_0", b.config)
                             for i, b in enumerate(sinks)]
        self._state = "stopped"
        #: ``on_state(rule_id, state)`` after every change of :attr:`state` (set by the manager)
        self.on_state: Callable[[str, str], None] | None = None
        self.last_start_ms = 0
        self.last_stop_ms = 0
        self._stop = threading.Event()
        self._feed: SourceFeed | None = None
        self._feed_key = ""
        self._inlet: Inlet | None = None
        self._ops: OpsRunner | None = None
        self._writers: list[SinkWriter] = []  # one per sink instance, made by start()
        self._handoffs = Handoffs(self.scheduler, rule.buffer_length,
                                  [b.action.buffer_length or rule.buffer_length for b in sinks], self._stop)
        self._unsubscribe: Callable[[], None] | None = None
        self._sinks_running = 0
        self._lock = threading.Lock()
        self._closed = False

    @property
    def state(self) -> str:
        """"running", "stopped", or "stopped: <why>"."""
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        self._state = value
        if self.on_state is not None:
            self.on_state(self.rule.id, value)

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Create the instances (config errors raise RuleError here) and start reading."""
        rule_id = self.rule.id
        own_feed: SourceFeed | None = None
        try:
            if self._shared_feeds is None:
                own_feed = self._make_feed()
            sinks = self._make_sinks()
            self._writers = [
                SinkWriter(rule_id, i, sink, b.action, m, self._handoffs, self._stop, self._sink_finished)
                for i, (sink, b, m) in enumerate(zip(sinks, self._bindings, self.sink_metrics))
            ]
            if self._errors is not None:
                self._errors.writers = self._writers
            for use in self.plan.uses:
                try:
                    use.open(rule_id, f"function_{use.name}_{use.index}")
                except Exception as exc:
                    raise RuleError(
                        f"rule '{rule_id}': function '{use.name}' of plugin '{use.plugin}' could not start: {exc}"
                    ) from None
        except BaseException:
            self._feed = own_feed
            self._close_instances()
            raise
        ops = OpsRunner(rule_id, self.pipeline, self._writers, self._handoffs, self._stop, self.source_metrics,
                        inline=self._inline_ops, event_time=self.rule.is_event_time)
        self._ops = ops
        self._inlet = Inlet(rule_id, self.source_metrics, ops if self._joins is None else self._joins.wrap(ops))
        self._stop.clear()
        self.state = "running"
        self.last_start_ms = int(time.time() * 1000)
        self.plan.bounds.rule_id, self.plan.bounds.rule_start = rule_id, self.last_start_ms
        self._sinks_running = len(self._writers)
        for w in self._writers:
            w.start()
        window = self.plan.window
        if window is not None and window.is_time and not self.rule.is_event_time:
            self._unsubscribe = self.clock.subscribe(ops.tick, TICK_MS)
        if self._joins is not None:
            assert self.pipeline.join is not None
            try:
                self._joins.start(ops, self.pipeline.join)
            except BaseException:
                self.stop("its joined inputs could not start", drain_s=0)
                raise
        if own_feed is not None:
            self._feed = own_feed
            enable_meta(own_feed, self.plan.meta_keys)
            own_feed.attach(self._inlet)
            own_feed.start()
        else:
            assert self._shared_feeds is not None
            self._feed_key = SharedFeeds.key(self.plan.stream.name, self._source_config)
            self._feed = self._shared_feeds.attach(self._feed_key, self._make_shared_feed, self._inlet)
            enable_meta(self._feed, self.plan.meta_keys)

    def _make_feed(self, shared: bool = False) -> SourceFeed:
        plugin = self._source_plugin
        ctx = Context(plugin_name=plugin.name, rule_id="" if shared else self.rule.id, op_id="source")
        stream = self.plan.stream
        source = create(plugin, self._source_config, ctx, f"source '{plugin.name}' of stream {stream.name}")
        feed = SourceFeed(f"{stream.name}", source, self.clock, self.scheduler, shared=shared)
        errors = None if shared else self._errors  # a SHARED stream's decode errors are only counted
        try:
            on_error = feed.decode_error if errors is None else errors.decode_hook(feed.decode_error)
            feed.decoder = make_decoder(stream, source.schema(), on_error)
            if errors is not None:
                feed.decoder = errors.reporting(feed.decoder)
        except BaseException:
            quietly(source.close)
            raise
        return feed

    def _make_shared_feed(self) -> SourceFeed:
        return self._make_feed(shared=True)

    def probe(self) -> None:
        """Create and close the source and sink instances: their configuration is checked by
        the plugins themselves, and no I/O happens (create() does no slow work)."""
        plugin = self._source_plugin
        ctx = Context(plugin_name=plugin.name, rule_id=self.rule.id, op_id="source")
        source = create(plugin, self._source_config, ctx, f"source '{plugin.name}' of stream {self.plan.stream.name}")
        quietly(source.close)
        if self._joins is not None:
            self._joins.probe()
        for sink in self._make_sinks():
            quietly(sink.close)

    def _make_sinks(self) -> list[Any]:
        made: list[Any] = []
        try:
            for i, b in enumerate(self._bindings):
                ctx = Context(plugin_name=b.plugin.name, rule_id=self.rule.id, op_id=f"sink_{b.action.sink}_{i}")
                plugin = with_sink_props(b.plugin)  # eKuiper's common properties, for every sink alike
                made.append(create(plugin, b.config, ctx, f"sink '{b.action.sink}' (action {i})"))
        except BaseException:
            for sink in made:
                quietly(sink.close)
            raise
        return made

    def stop_source(self) -> None:
        """The first step of a stop: the rule takes no more data in (the rows it already took
        keep going). RuleManager.shutdown() calls it on every rule before stopping them, so
        their drains overlap."""
        inlet, feed = self._inlet, self._feed
        if self._joins is not None:
            self._joins.stop()
        if inlet is None or feed is None or inlet.detached:
            return
        if self._shared_feeds is not None:
            self._shared_feeds.detach(self._feed_key, feed, inlet)
        else:
            inlet.detached = True
            feed.stop()

    def stop(self, reason: str = "", drain_s: float | None = None, settle_s: float = JOIN_S) -> None:
        """Stop reading, drain for up to ``drain_s`` seconds (default: the rule's
        drainTimeout), then stop, wait up to ``settle_s`` for a call in progress, count what
        was left undelivered, flush and close every instance. Idempotent."""
        self.stop_source()
        if not self._stop.is_set():
            self._drain(self.rule.drain_timeout_ms / 1000 if drain_s is None else drain_s)
        self._stop.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for w in self._writers:
            w.abandon_retry()
        self._settle(settle_s)
        self._count_left_behind()
        self._close_instances()
        with self._lock:
            if self.state == "running":
                self.state = f"stopped: {reason}" if reason else "stopped"
            self.last_stop_ms = int(time.time() * 1000)

    def _drain(self, seconds: float) -> None:
        """Let the rows already taken in reach the sinks, for at most ``seconds``."""
        deadline = time.monotonic() + seconds
        if self._feed is not None and self._shared_feeds is None:
            self._feed.join(seconds)
        if self._inlet is not None:
            self._inlet.quiet(max(0.0, deadline - time.monotonic()))
        self.wait_idle(max(0.0, deadline - time.monotonic()))

    def _settle(self, seconds: float) -> None:
        """After the stop flag: wait for the turns still running (each sees the flag at its next item)."""
        deadline = time.monotonic() + seconds
        while self._stuck() and time.monotonic() < deadline:
            time.sleep(0.005)

    def _stuck(self) -> dict[str, Any]:
        """What is still inside a call: "source" (a feed of its own), "ops", and the sinks."""
        out: dict[str, Any] = {}
        feed, inlet, ops = self._feed, self._inlet, self._ops
        reading = feed is not None and self._shared_feeds is None and not feed.join(0)
        if reading or (inlet is not None and inlet.active):  # or handing this rule a batch it counted in
            out["source"] = True
        busy = self._handoffs.busy()
        ops_busy = (inlet is not None and inlet.active) if self._inline_ops else 0 in busy
        if ops_busy:
            out["ops"] = True
        sinks = {n - 1 for n in busy if n > 0}
        if ops_busy and ops is not None and ops.writing >= 0:
            sinks.add(ops.writing)
        if sinks:
            out["sinks"] = sinks
        return out

    def _count_left_behind(self) -> None:
        """After the stop: count the rows still queued as undelivered, per node. On a shared
        feed, which goes on for other rules, their deliveries are let go (see source_reader)."""
        for node, rows in enumerate(self._handoffs.left_behind()):
            if rows:
                metrics = self.source_metrics if node == 0 else self.sink_metrics[node - 1]
                metrics.extra["records_undelivered_total"] = rows
                _log.warning("rule %s: %d rows were not delivered by %s when the rule stopped (drainTimeout"
                             " %d ms)", self.rule.id, rows, "the operators" if node == 0 else metrics.name,
                             self.rule.drain_timeout_ms)
        if self._shared_feeds is not None:
            release_all(self._handoffs.abandoned)
            if self._ops is not None:
                release_all(self._ops.let_go())
        self._handoffs.abandoned.clear()

    def _close_instances(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # An instance still inside a plugin call (one that ignored its timeout) is left open:
        # the contract never has the host call one instance from two threads.
        stuck = self._stuck()
        if stuck:
            _log.error("rule %s: %s still inside a plugin call %g s after the stop; its instances are left open",
                       self.rule.id, ", ".join(sorted(stuck)), JOIN_S)
        if "ops" not in stuck:
            for use in self.plan.uses:
                use.close()
        in_use = stuck.get("sinks", set())
        for w in self._writers:
            if w.index not in in_use:
                quietly(w.sink.flush)
                quietly(w.sink.close)
        if self._feed is not None and self._shared_feeds is None and "source" not in stuck:
            quietly(self._feed.source.close)
        if self._joins is not None:
            self._joins.close()

    # -- callbacks -----------------------------------------------------------------------------
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
            self.scheduler.submit(self.stop)

    def _window_full(self, dropped: int) -> None:
        """The window held more than its cap: its oldest rows were dropped (counted in the
        window node's ``records_dropped_total``); said in the log at most every 10 s."""
        w = self.pipeline.window
        assert w is not None
        self._error_log.warning("window", f"rule {self.rule.id}: its window holds more than windowMaxRows "
                                f"{w.max_rows} rows or windowMaxBytes {w.max_bytes} bytes; the oldest rows are dropped "
                                f"({w.metrics.extra.get('records_dropped_total', 0)} so far, records_dropped_total of "
                                f"{w.metrics.name})")

    def _stage_failed(self, m: NodeMetrics, exc: BaseException) -> None:
        if isinstance(exc, RuleStopped):
            _log.error("rule %s stops: %s", self.rule.id, exc)
            self.scheduler.submit(lambda: self.stop(str(exc)))
            return
        self._error_log.warning(f"{m.name}: {exc}", f"rule {self.rule.id}: {m.name} failed, the rows it failed on "
                                f"dropped: {exc}")
        if self._errors is not None:
            self._errors.send(f"{m.name}: {exc}")

    # -- status ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """eKuiper's ``GET /rules/{id}/status``: the state, then every node's metrics."""
        return rule_status(self)


__all__ = ["RuleRuntime", "SinkBinding"]
