"""What a worker process runs: the engine over the worker's own registry of loaded plugins.

The control plane keeps the definitions (streams and rules, in its store) and decides which
worker runs which rule; a :class:`WorkerRules` keeps copies of the streams, loads every
installed plugin into its own registry, and runs the rules it is given with the engine's
:class:`~plutino.engine.RuleManager`, exactly as a single process did before: a batch goes
from the source through the operators to the sinks inside this process.

Each method is one operation of the control protocol (:mod:`.worker` dispatches them by
name); arguments and results are plain data (dicts, lists, strings).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from plutino.engine import BUILTIN_NAMES, Catalog, RuleManager
from plutino.engine.adhoc_query import run_query
from plutino.engine.errors import NotFoundError
from plutino.engine.metering import MeteredRegistry, PluginMeters
from plutino.engine.plugin_config import YamlConfigResolver
from plutino.engine.plugin_props import PluginMetadata
from plutino.engine.rules import RuleDef
from plutino.engine.streams import parse_create_stream
from plutino.errors import PlutinoError
from plutino.io.builtin import builtin_plugin, register_builtins
from plutino.native import watch
from plutino.native.loader import load_plugin
from plutino.registry import Registry

_log = logging.getLogger("plutino.worker")


class WorkerRules:
    """The rules of one worker, and everything they need."""

    def __init__(self, board: Any) -> None:
        self.board = board
        self.registry = Registry(BUILTIN_NAMES)
        self.meters = PluginMeters()
        self.catalog = Catalog()
        self.engine: RuleManager | None = None
        self.versions: dict[tuple[str, str], str] = {}
        self.load_failures: dict[str, str] = {}

    # -- set-up --------------------------------------------------------------------------
    def init(self, data_root: str, plugins: list[dict[str, Any]], streams: list[str]) -> dict[str, str]:
        """Load the installed plugins, register the built-ins, learn the streams; return the
        plugins that did not load, by ``kind/name``, with the reason."""
        for p in plugins:
            try:
                self.add_plugin(**p)
            except PlutinoError as exc:
                self.load_failures[f"{p['kind']}/{p['name']}"] = str(exc)
        register_builtins(self.registry)
        etc = Path(data_root) / "etc"
        resolver = YamlConfigResolver({"source": [etc / "sources"], "sink": [etc / "sinks"]})
        self.engine = RuleManager(MeteredRegistry(self.registry, self.meters), self.catalog, config_for=resolver,
                                  metadata=PluginMetadata.under(etc))
        for sql in streams:
            self.put_stream(sql)
        return self.load_failures

    def _rules(self) -> RuleManager:
        if self.engine is None:
            raise PlutinoError("the worker was not initialised")
        return self.engine

    def add_plugin(self, kind: str, name: str, path: str, version: str) -> None:
        """Load a plugin (installed or updated) and put it in place of any plugin of that name."""
        with watch.noted("", name, "load (dlopen, entry, descriptor)"):
            plugin = load_plugin(path, kind=kind)
        if self.registry.find(kind, name) is not None:
            self.registry.unregister(kind, name)
        self.registry.register(plugin)
        self.versions[(kind, name)] = version

    def remove_plugin(self, kind: str, name: str) -> None:
        if self.registry.find(kind, name) is not None:
            self.registry.unregister(kind, name)
        self.versions.pop((kind, name), None)
        builtin = builtin_plugin(kind, name)
        if builtin is not None:
            self.registry.register(builtin)

    def put_stream(self, sql: str) -> None:
        self.catalog.put_stream(parse_create_stream(sql), replace=True)

    def drop_stream(self, name: str) -> None:
        if self.catalog.has_stream(name):
            self.catalog.drop_stream(name)

    # -- rules ---------------------------------------------------------------------------
    def _timeout(self, rule: RuleDef) -> None:
        ms = rule.plugin_timeout_ms
        self.board.set_timeout(rule.id, ms / 1000 if ms else None)

    def validate(self, rule: dict[str, Any], instances: bool = True) -> None:
        definition = RuleDef.from_dict(rule)
        self._timeout(definition)
        self._rules().validate_rule(definition, instances)

    def start(self, rule: dict[str, Any]) -> str:
        """Start a rule (its definition replaces any this worker had); return its state.

        A rule new to this worker is checked here (as ``validate`` would) before it starts, so
        the control plane creates a triggered rule with one request, not two; refused, it is
        not kept."""
        engine = self._rules()
        definition = RuleDef.from_dict(rule)
        self._timeout(definition)
        known = self.catalog.has_rule(definition.id)
        if known:
            engine.stop_rule(definition.id)
            self.catalog.put_rule(definition, replace=True)
            plan = None
        else:
            definition, plan = engine.check_rule(definition, instances=False)
            self.catalog.put_rule(definition)
        try:
            engine.start_rule(definition.id, plan)
        except BaseException:
            if not known:
                self.forget(definition.id)
            raise
        return self.state(definition.id)

    def stop(self, rule_id: str, reason: str = "") -> str:
        """Stop a rule (draining it); return its state: the control plane's record of it."""
        if self.catalog.has_rule(rule_id):
            self._rules().stop_rule(rule_id, reason)
        return self.state(rule_id)

    def forget(self, rule_id: str) -> None:
        """Stop the rule and drop it from this worker (deleted, or moved elsewhere)."""
        if self.catalog.has_rule(rule_id):
            try:
                self._rules().delete_rule(rule_id)
            except NotFoundError:
                pass  # forgotten by a request that ran alongside

    def state(self, rule_id: str) -> str:
        if not self.catalog.has_rule(rule_id):
            return "stopped"
        return self._rules().state(rule_id)

    def states(self) -> dict[str, str]:
        engine = self._rules()
        return {r.id: engine.state(r.id) for r in self.catalog.rules()}

    def status(self, rule_id: str) -> dict[str, Any]:
        if not self.catalog.has_rule(rule_id):
            return {"status": "stopped", "known": False}  # not (or no longer) placed here
        status = self._rules().rule_status(rule_id)
        return {**status, "pluginVersions": self._versions_of(rule_id)}

    def _runtime(self, rule_id: str) -> Any:
        """The rule's current (or last) run, or None (not started, or dropped meanwhile)."""
        try:
            return self._rules().runtime(rule_id)
        except PlutinoError:
            return None

    def _used(self, rule_id: str) -> set[tuple[str, str]]:
        """(kind, name) of every plugin the rule's current run uses."""
        runtime = self._runtime(rule_id)
        if runtime is None:
            return set()
        plan = runtime.plan
        inputs = [i.source for i in plan.join.inputs] if plan.join is not None else [plan.stream]
        return {*(("source", s.type) for s in inputs), *(("sink", a.sink) for a in runtime.rule.actions),
                *(("function", u.plugin) for u in plan.uses)}

    def _versions_of(self, rule_id: str) -> dict[str, str]:
        """``kind/name`` -> version of each installed plugin the rule uses (built-ins have none)."""
        used = self._used(rule_id)
        return {f"{k}/{n}": v for (k, n), v in sorted(self.versions.items()) if (k, n) in used}

    def users(self, kind: str, name: str) -> list[str]:
        """Running rules of this worker that use plugin ``name`` of ``kind``."""
        return [r.id for r in self.catalog.rules()
                if self.state(r.id) == "running" and (kind, name) in self._used(r.id)]

    def snapshot(self) -> dict[str, Any]:
        """Everything ``GET /metrics`` shows of this worker: the plugins' counters, and each
        rule's state and node counters."""
        rules = {}
        for rule in self.catalog.rules():
            runtime = self._runtime(rule.id)
            if runtime is None:
                continue
            nodes = [runtime.source_metrics, *runtime.pipeline.nodes, *runtime.sink_metrics]
            # (name, rows in, rows out, exceptions, latency, eKuiper's records in and out, buffer length)
            rules[rule.id] = {"state": runtime.state, "nodes": [
                (n.name, n.records_in, n.records_out, n.exceptions, n.process_latency_us, *n.ekuiper_counts(),
                 n.buffer_length) for n in nodes]}
        meters = [(c.kind, c.plugin, c.function, c.calls, c.rows, c.errors, c.seconds) for c in self.meters.all()]
        return {"rules": rules, "meters": meters}

    def query_batches(self, sql: str, table: Any, options: dict[str, Any]) -> Any:
        """:func:`plutino.engine.query.query` over ``table`` (``plutino.Engine(isolated=True)``)."""
        from plutino.engine.query import query

        return query(sql, table.to_batches(), registry=self.registry, **options)

    def query(self, sql: str, limit: int, timeout_s: float) -> dict[str, Any]:
        return run_query(self._rules(), self.registry, sql, limit, timeout_s)

    def shutdown(self, deadline_s: float | None = None) -> None:
        """Stop every rule, all within ``deadline_s`` (the worker exits after that anyway)."""
        if self.engine is not None:
            self.engine.shutdown(deadline_s)


__all__ = ["WorkerRules"]
