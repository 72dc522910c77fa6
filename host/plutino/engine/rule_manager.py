"""The engine's API: streams and rules, as the REST layer and scripts use them.

:class:`RuleManager` ties the catalog (definitions), the registry (plugins and functions) and
the running rules together. Its methods mirror eKuiper's REST API: ``exec_stream_sql`` for
``POST /streams``, ``create_rule`` for ``POST /rules``, ``rule_status`` for
``GET /rules/{id}/status`` and so on. Everything a user can get wrong is checked when a rule
is created (SQL, stream, functions, sinks and their configuration), so a rule that was
accepted starts.

Locking: one lock per rule orders the operations on that rule (a stop, then a start); the
manager's own lock guards only its maps and is never held across a start, a drain or a plugin
call, so ``GET /rules`` and operations on other rules never wait behind a slow sink.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping

from .catalog import Catalog
from .clock import Clock, SystemClock
from .errors import NotFoundError, RuleError
from .hints import closest, listing
from .join_feeds import JoinSource
from .join_plan import JoinInput
from .planner import QueryPlan, plan_query
from .plugin_functions import FunctionLookup, RegistryFunctions
from .plugin_props import PluginMetadata, sink_props
from .rules import RuleDef
from .runtime import RuleRuntime, SinkBinding
from .scheduler import Scheduler, default_scheduler
from .schema_watch import SchemaWatch
from .shared_sources import SharedFeeds
from .stream_api import StreamApi

_log = logging.getLogger("plutino.engine")

#: ``config_for(kind, plugin_name, conf_key, properties) -> config``: the config a source or
#: sink plugin is created with. The default passes ``properties`` as they are; the host
#: overlays them on the plugin's yaml (``default:`` then the ``conf_key`` section).
ConfigResolver = Callable[[str, str, str, Mapping[str, Any]], Mapping[str, Any]]


def _plain_config(kind: str, name: str, conf_key: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(props)


class RuleManager(StreamApi):
    """Streams and rules of one host. Thread-safe."""

    def __init__(
        self,
        registry: Any,
        catalog: Catalog | None = None,
        *,
        clock: Clock | None = None,
        config_for: ConfigResolver | None = None,
        scheduler: Scheduler | None = None,
        metadata: PluginMetadata | None = None,
    ) -> None:
        self.registry = registry
        self.plugin_metadata = metadata
        self.catalog = catalog or Catalog()
        self.clock: Clock = clock or SystemClock()
        self.config_for = config_for or _plain_config
        self.functions: FunctionLookup = RegistryFunctions(registry)
        self.scheduler = scheduler or default_scheduler()
        self.shared_feeds = SharedFeeds()
        self._runtimes: dict[str, RuleRuntime] = {}
        self._lock = threading.RLock()  # the maps (catalog, runtimes); never held across a call
        self._rule_locks: dict[str, threading.Lock] = {}
        #: ``on_state(rule_id, state)`` whenever a rule's state changes, also by itself (the end
        #: of its stream): a worker tells its control plane this way, without scanning its rules
        self.on_state: Callable[[str, str], None] | None = None

    # -- streams (the rest in StreamApi) ---------------------------------------------------
    def drop_stream(self, name: str, force: bool = False, table: bool = False) -> None:
        with self._lock:
            super().drop_stream(name, force, table)

    def _stream_users(self, name: str) -> list[str]:
        return [r.id for r in self.catalog.rules() if self._reads(r, name)]

    def _reads(self, rule: RuleDef, stream: str) -> bool:
        try:
            plan = self._plan(rule)
            return stream in ([i.source.name for i in plan.join.inputs] if plan.join else [plan.stream.name])
        except Exception:
            return stream in rule.sql  # a rule that no longer plans: be careful, keep the stream

    # -- rules -------------------------------------------------------------------------------
    def _plan(self, rule: RuleDef) -> QueryPlan:
        return plan_query(rule.sql, self.catalog.stream_map(), self.functions)

    def validate_rule(self, body: Mapping[str, Any] | RuleDef, instances: bool = True) -> RuleDef:
        """Check a rule completely without creating it: SQL, stream, functions, sinks and their
        configuration (sink and source instances are created and closed again, no I/O).
        ``instances=False`` leaves out that last part, for a rule about to start, whose start
        creates the instances and refuses a bad configuration the same way."""
        return self._validated(body, instances)[0]

    def check_rule(self, body: Mapping[str, Any] | RuleDef, instances: bool = True) -> tuple[RuleDef, QueryPlan]:
        """:meth:`validate_rule`, also giving the plan, for :meth:`start_rule` to start with
        (planning once, not twice, per create)."""
        return self._validated(body, instances)

    def _validated(self, body: Mapping[str, Any] | RuleDef, instances: bool = True) -> tuple[RuleDef, QueryPlan]:
        rule = body if isinstance(body, RuleDef) else RuleDef.from_dict(body)
        plan = self._plan(rule)
        if rule.is_event_time and plan.window is not None and plan.window.is_time and not plan.stream.timestamp:
            raise RuleError(
                f"rule '{rule.id}' sets isEventTime, but stream '{plan.stream.name}' has no TIMESTAMP "
                f'field; add TIMESTAMP="<field>" to its WITH (...) or drop the option'
            )
        if rule.is_event_time and plan.join is not None:
            raise RuleError(f"rule '{rule.id}' sets isEventTime, which a JOIN does not support yet; drop the option")
        runtime = self._runtime(rule, plan)
        if instances:
            runtime.probe()
        return rule, plan

    def _runtime(self, rule: RuleDef, plan: QueryPlan) -> RuleRuntime:
        stream = plan.stream
        source = self.registry.find("source", stream.type)
        own = self._check_source(stream)  # the plugin's properties: checked again, its metadata may be new
        source_config = self.config_for("source", stream.type, stream.conf_key, {**stream.source_properties(), **own})
        bindings = []
        for i, action in enumerate(rule.actions):
            plugin = self.registry.find("sink", action.sink)
            if plugin is None:
                names = [p.name for p in self.registry.plugins("sink")]
                best = closest(action.sink, names)
                guess = f"did you mean '{best}'? " if best else ""
                raise RuleError(
                    f"rule '{rule.id}': action {i} uses sink '{action.sink}', which is not installed; "
                    f"{guess}sinks: {listing(names)}"
                )
            props = sink_props(rule.id, i, action.sink, plugin, action.props, self.plugin_metadata)
            config = self.config_for("sink", action.sink, "default", props)
            bindings.append(SinkBinding(action, plugin, config))
        joined = [] if plan.join is None else [self._join_source(i) for i in plan.join.inputs[1:]]
        runtime = RuleRuntime(rule, plan, source, source_config, bindings, self.clock, self.scheduler,
                              self.shared_feeds, joined)
        runtime.on_state = self._state_changed
        if plan.stream.schemaless and plan.join is None:  # its types are known from its first rows
            runtime.pipeline.watch = SchemaWatch(rule.id, plan.stream, plan.columns_read,
                                                 lambda seen: plan_query(rule.sql, {seen.name: seen}, self.functions))
        return runtime

    def _join_source(self, joined: JoinInput) -> JoinSource:
        stream = joined.source
        own = self._check_source(stream)
        config = self.config_for("source", stream.type, stream.conf_key, {**stream.source_properties(), **own})
        return JoinSource(joined, self.registry.find("source", stream.type), config)

    def _state_changed(self, rule_id: str, state: str) -> None:
        hook = self.on_state
        if hook is not None and self._runtimes.get(rule_id) is not None:
            hook(rule_id, state)

    def _rule_lock(self, rule_id: str) -> threading.Lock:
        with self._lock:
            lock = self._rule_locks.get(rule_id)
            if lock is None:
                lock = self._rule_locks[rule_id] = threading.Lock()
            return lock

    def create_rule(self, body: Mapping[str, Any]) -> RuleDef:
        """POST /rules: check, store, and start the rule unless ``triggered`` is false."""
        rule, plan = self._validated(body)
        with self._rule_lock(rule.id):
            with self._lock:
                self.catalog.put_rule(rule)
            if rule.triggered:
                self._start(rule, plan)
        return rule

    def update_rule(self, body: Mapping[str, Any]) -> RuleDef:
        """PUT /rules/{id}: replace the definition; a running rule restarts with it, a stopped
        one stays stopped (as in eKuiper)."""
        rule, plan = self._validated(body)
        with self._rule_lock(rule.id):
            with self._lock:
                self.catalog.get_rule(rule.id)
            was_running = self._running(rule.id)
            self._stop(rule.id)
            with self._lock:
                self.catalog.put_rule(rule, replace=True)
            if was_running:
                self._start(rule, plan)
        return rule

    def start_rule(self, rule_id: str, plan: QueryPlan | None = None) -> None:
        """Start a stored rule (``plan``: from :meth:`check_rule` just now, or None to plan)."""
        with self._rule_lock(rule_id):
            rule = self.catalog.get_rule(rule_id)
            if self._running(rule_id):
                return
            self._start(rule, plan)

    def stop_rule(self, rule_id: str, reason: str = "canceled manually") -> None:
        with self._rule_lock(rule_id):
            self.catalog.get_rule(rule_id)
            self._stop(rule_id, reason)

    def state(self, rule_id: str) -> str:
        """The rule's state ("running", "stopped: <why>"), without its metrics."""
        return self._state(rule_id)

    def restart_rule(self, rule_id: str) -> None:
        with self._rule_lock(rule_id):
            rule = self.catalog.get_rule(rule_id)
            self._stop(rule_id, "restarting")
            self._start(rule)

    def delete_rule(self, rule_id: str) -> None:
        with self._rule_lock(rule_id):
            self.catalog.get_rule(rule_id)
            self._stop(rule_id)
            with self._lock:
                self._runtimes.pop(rule_id, None)
                self.catalog.delete_rule(rule_id)
                self._rule_locks.pop(rule_id, None)

    def rule_status(self, rule_id: str) -> dict[str, Any]:
        # no lock: a status must not wait behind a start or a stop that is in a plugin call
        self.catalog.get_rule(rule_id)
        runtime = self._runtimes.get(rule_id)
        if runtime is None:
            return {"status": "stopped"}
        return runtime.status()

    def describe_rule(self, rule_id: str) -> dict[str, Any]:
        return self.catalog.get_rule(rule_id).to_dict()

    def list_rules(self) -> list[dict[str, Any]]:
        """GET /rules: every rule with its state."""
        return [{"id": r.id, "status": self._state(r.id)} for r in self.catalog.rules()]

    def runtime(self, rule_id: str) -> RuleRuntime:
        """The rule's current (or last) run, for tests and tools."""
        self.catalog.get_rule(rule_id)
        runtime = self._runtimes.get(rule_id)
        if runtime is None:
            raise NotFoundError("running rule", rule_id, list(self._runtimes))
        return runtime

    def start_all(self) -> dict[str, str]:
        """Start every stored rule that is triggered (host start-up); return failures by id."""
        failures: dict[str, str] = {}
        for rule in self.catalog.rules():
            if not rule.triggered:
                continue
            try:
                self.start_rule(rule.id)
            except Exception as exc:
                failures[rule.id] = str(exc)
                _log.error("rule %s did not start: %s", rule.id, exc)
        return failures

    def shutdown(self, deadline_s: float | None = None) -> None:
        """Stop every running rule (host shutdown): every source first, so the drains overlap,
        then the stops, each draining for its drainTimeout but all within ``deadline_s`` (when
        given) of now: a worker that must exit soon flushes what it can of every rule."""
        with self._lock:
            runtimes = list(self._runtimes.values())
        for runtime in runtimes:
            runtime.stop_source()
        end = None if deadline_s is None else time.monotonic() + deadline_s

        def stop(runtime: RuleRuntime) -> None:
            if end is None:
                runtime.stop("host shutting down")
                return
            left = max(0.0, end - time.monotonic())
            runtime.stop("host shutting down", drain_s=min(left, runtime.rule.drain_timeout_ms / 1000),
                         settle_s=left)

        with ThreadPoolExecutor(max_workers=16, thread_name_prefix="plutino-shutdown") as pool:
            list(pool.map(stop, runtimes))

    # -- internals ---------------------------------------------------------------------------
    def _running(self, rule_id: str) -> bool:
        runtime = self._runtimes.get(rule_id)
        return runtime is not None and runtime.state == "running"

    def _state(self, rule_id: str) -> str:
        runtime = self._runtimes.get(rule_id)
        return "stopped" if runtime is None else runtime.state

    def _start(self, rule: RuleDef, plan: QueryPlan | None = None) -> None:
        # planned afresh unless just planned: streams and plugins may have changed since
        if plan is None:
            plan = self._plan(rule)
        runtime = self._runtime(rule, plan)
        with self._lock:
            self._runtimes[rule.id] = runtime
        try:
            runtime.start()
        except Exception as exc:
            runtime.state = f"stopped: {exc}"
            raise

    def _stop(self, rule_id: str, reason: str = "") -> None:
        runtime = self._runtimes.get(rule_id)
        if runtime is not None:
            runtime.stop(reason)


__all__ = ["ConfigResolver", "RuleManager"]
