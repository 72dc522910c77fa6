"""The Plutino host: one :class:`Host` owning a data directory (the control plane).

The Host ties the parts together and keeps them consistent with the store:

- the data directory and its SQLite store (:mod:`plutino.config`, :mod:`plutino.store`);
- the registry of names, with the built-in I/O plugins, and the plugin manager that installs
  plugins (:mod:`plutino.packages.manager`). This process never loads a plugin's code: an
  install's load check runs in a probe process, and the registry holds what the check found
  (:mod:`plutino.packages.probed`);
- the data plane (:class:`plutino.dataplane.control.DataPlane`), which answers the engine's
  API while the rules run in supervised worker processes, and whose catalog writes every
  stream and rule to the store.

A rule's *desired* state ("running" or "stopped") is kept in the store beside its definition:
creating or starting a rule sets it running, stopping sets it stopped, a shutdown leaves it as
it is. At start-up the rules whose desired state is running are started again.

:func:`serve` is ``plutino serve`` (:mod:`plutino.api.serving`): it binds the socket first,
starts the Host, runs uvicorn until SIGINT or SIGTERM, then closes the Host, which stops the
rules (flushing their sinks) and closes the store.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plutino.config import DataDir, DataPlaneSettings, Settings, load_dataplane_settings
from plutino.dataplane.control import DataPlane
from plutino.demo import bundled_plugins_dir, install_bundled, install_demo
from plutino.engine import BUILTIN_NAMES, Catalog
from plutino.engine.adhoc_query import QUERY_PREFIX
from plutino.engine.errors import NotFoundError
from plutino.engine.rules import RuleDef
from plutino.engine.sql_limits import check_sql_limits
from plutino.errors import PlutinoError
from plutino.io.builtin import builtin_plugin, is_builtin, register_builtins
from plutino.packages.manager import PluginManager
from plutino.registry import Registry
from plutino.restore import QUARANTINE_STATE, UnrestoredRule, restore_catalog, unrestored_state
from plutino.store import Store

log = logging.getLogger("plutino.host")
RESTORE_WAIT_S = 5.0  # the API opens once the stored rules run, or after this long (see Host.start)

@dataclass
class StartReport:
    """What :meth:`Host.start` did, for the log and for tests: what is loaded, restored and
    running after start-up, the demo's part included (``bundled`` and ``demo`` say which)."""

    plugins: dict[str, list[str]] = field(default_factory=dict)
    streams: list[str] = field(default_factory=list)
    rules_started: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    bundled: list[str] = field(default_factory=list)
    demo: bool = False


class Host:
    """Everything one Plutino server owns. Thread-safe where its parts are (all of them)."""

    def __init__(self, data_dir: DataDir | str | os.PathLike[str] | None = None, *,
                 settings: Settings | None = None, dataplane: DataPlaneSettings | None = None) -> None:
        self.data = (data_dir if isinstance(data_dir, DataDir) else DataDir.from_env(data_dir)).ensure()
        self.store = Store(self.data.store_path)
        self.dataplane_settings = dataplane or load_dataplane_settings(self.data)
        self.registry = Registry(BUILTIN_NAMES)  # built-in I/O joins in start(), after installed plugins
        self.plugins = PluginManager(self.data, settings, registry=self.registry, store=self.store)
        self.plugins.probe_timeout_s = self.dataplane_settings.probe_timeout_s
        self.plugins.on_change = self._plugin_changed
        self.catalog = Catalog(on_put=self._stored, on_delete=self._unstored)
        self.engine = DataPlane(self.catalog, self.registry, self.dataplane_settings, self.data.root,
                                installed=self._installed, on_quarantine=self._quarantined,
                                on_plugin_crash=self._plugin_crashed)
        self.plugins.in_use = self.rules_using
        self.plugins.stop_rules = self._stop_for_plugin
        self.started_at = time.time()
        #: Why a rule that should run could not be started at start-up, by rule id.
        self.start_failures: dict[str, str] = {}
        #: Why a stored rule could not be restored at start-up (a damaged row), by rule id.
        self.unrestored: dict[str, str] = {}
        self._closed = False

    # ---------------------------------------------------------------- life cycle

    def start(self, demo: bool = False, bundled_dir: Path | None = None, background: bool = False) -> StartReport:
        """Load plugins, streams and rules from the store; start the rules that were running.

        ``background`` (``plutino serve``): the rules are started by a thread of their own, and
        this returns when they run or after ``RESTORE_WAIT_S``, whichever comes first: a few
        rules are running when the API opens, as before, and thousands do not keep it closed
        (they show "starting" until they run). ``report.rules_started`` and
        ``report.failures`` fill in as they start.

        ``demo``: on a data directory with nothing in it yet, install the bundled plugins
        (from ``bundled_dir``, default :func:`bundled_plugins_dir`) and create the demo stream
        and rule. Nothing here is fatal: what fails is logged and shown by the API.
        """
        report = StartReport()
        import elftools.elf.elffile  # noqa: F401 - now, not under the GIL of the first install's request

        fresh = not (self.store.list_plugins() or self.store.list_entries("streams")
                     or self.store.list_entries("rules"))
        report.plugins = self.plugins.load_all()
        for failed in report.plugins["failed"]:
            log.error("plugin %s did not load; see GET /plugins/<kind>s/<name> for the reason", failed)
        register_builtins(self.registry)  # an installed plugin keeps a built-in's name
        self._restore(report, background)
        if demo:
            if fresh:
                self._install_demo(report, bundled_dir)
            else:
                log.info("--demo: %s already holds plugins, streams or rules; the demo is set up only on an"
                         " empty data directory", self.data.root)
        log.info("started: plugins %s, streams %s, rules running %s%s", len(report.plugins["loaded"]),
                 len(report.streams), len(report.rules_started),
                 f", failures {sorted(report.failures)}" if report.failures else "")
        return report

    def _restore(self, report: StartReport, background: bool = False) -> None:
        wanted = restore_catalog(self.store, self.catalog, report, self.engine.quarantined, self.unrestored)
        if background:
            self.engine.mark_starting(wanted)
            restoring = threading.Thread(target=self._start_wanted, args=(wanted, report), name="plutino-restore",
                                         daemon=True)
            restoring.start()
            restoring.join(RESTORE_WAIT_S)
        else:
            self._start_wanted(wanted, report)

    def _start_wanted(self, wanted: list[str], report: StartReport) -> None:
        # started together, their requests to the workers in flight at once: one after another,
        # 10,000 rules kept the API closed for as many round trips
        failures = self.engine.start_many(wanted)
        if self._closed:
            return  # shut down while restoring: what did not start is not a failure of the rule
        for rule_id in wanted:
            exc = failures.get(rule_id)
            if exc is None:
                report.rules_started.append(rule_id)
                continue
            reason = str(exc) if isinstance(exc, PlutinoError) else f"{type(exc).__name__}: {exc}"
            self.start_failures[rule_id] = reason
            report.failures[f"rule/{rule_id}"] = reason
            log.error("rule %s did not start: %s", rule_id, reason)

    def close(self) -> None:
        """Stop every rule (their sinks are flushed and closed) and the workers, then close the store."""
        if self._closed:
            return
        self._closed = True
        log.info("shutting down: stopping rules")
        self.engine.shutdown()
        self.store.close()
        log.info("shut down")

    # ---------------------------------------------------------------- the catalog's store hooks

    def _stored(self, kind: str, name: str, record: dict[str, Any]) -> None:
        if kind == "rule":
            if name.startswith(QUERY_PREFIX):
                return
            previous = self.store.get_entry("rules", name)
            # a new rule is written with its desired state at once: one write per create, not two
            state = previous.state if previous else ("running" if RuleDef.from_dict(record).triggered else "stopped")
            self.store.put_entry("rules", name, record, state)
        else:
            self.store.put_entry("streams", name, record)

    def _unstored(self, kind: str, name: str) -> None:
        self.store.delete_entry("rules" if kind == "rule" else "streams", name)

    def _want(self, rule_id: str, state: str) -> None:
        if not rule_id.startswith(QUERY_PREFIX):
            self.store.set_entry_state("rules", rule_id, state)

    # ---------------------------------------------------------------- rules, with their desired state

    def create_rule(self, body: Mapping[str, Any]) -> Any:
        """Create (and start) a rule; its store record, desired state included, is written once
        (by the catalog's hook, :meth:`_stored`)."""
        rule_id = body.get("id") if isinstance(body, Mapping) else None
        if isinstance(rule_id, str) and rule_id in self.unrestored:
            raise UnrestoredRule(rule_id, self.unrestored[rule_id], "create")
        return self.engine.create_rule(body)

    def update_rule(self, body: Mapping[str, Any]) -> Any:
        rule_id = body.get("id")
        if rule_id in self.unrestored and not self.catalog.has_rule(rule_id):  # replaces the damaged row
            rule = self.engine.create_rule(body)
            del self.unrestored[rule_id]
            return rule
        rule = self.engine.update_rule(body)  # a running rule restarts, a stopped one stays stopped
        self.start_failures.pop(rule.id, None)
        return rule

    def _usable(self, rule_id: str, action: str) -> None:
        if rule_id in self.unrestored:
            raise UnrestoredRule(rule_id, self.unrestored[rule_id], action)

    def describe_rule(self, rule_id: str) -> dict[str, Any]:
        """The rule as submitted (``GET /rules/{id}``)."""
        self._usable(rule_id, "describe")
        return self.engine.describe_rule(rule_id)

    def start_rule(self, rule_id: str) -> None:
        self._usable(rule_id, "start")
        self.engine.start_rule(rule_id)
        self.start_failures.pop(rule_id, None)
        self._want(rule_id, "running")

    def restart_rule(self, rule_id: str) -> None:
        self._usable(rule_id, "restart")
        self.engine.restart_rule(rule_id)
        self.start_failures.pop(rule_id, None)
        self._want(rule_id, "running")

    def stop_rule(self, rule_id: str) -> None:
        if rule_id in self.unrestored:
            return  # it does not run
        self.engine.stop_rule(rule_id)
        self.start_failures.pop(rule_id, None)
        self._want(rule_id, "stopped")

    def delete_rule(self, rule_id: str) -> None:
        if self.unrestored.pop(rule_id, None) is not None:
            self.store.delete_entry("rules", rule_id)
            return
        self.engine.delete_rule(rule_id)
        self.start_failures.pop(rule_id, None)

    def rule_status(self, rule_id: str) -> dict[str, Any]:
        if rule_id in self.unrestored:
            return {"status": unrestored_state(rule_id, self.unrestored[rule_id])}
        status = self.engine.rule_status(rule_id)
        failure = self.start_failures.get(rule_id)
        if failure and status.get("status") == "stopped":
            status = {**status, "status": f"stopped: {failure}"}
        return status

    def list_rules(self) -> list[dict[str, Any]]:
        """Every rule a user made (not the temporary ones of ``POST /query``), a failed
        restore's reason in place of a bare "stopped". One pass over fresh items: this is
        ``GET /rules``, 10,000 items at scale."""
        items = self.engine.list_rules()
        failures = self.start_failures
        if failures:
            for item in items:
                failure = failures.get(item["id"])
                if failure and item["status"] == "stopped":
                    item["status"] = f"stopped: {failure}"
        items = [item for item in items if not item["id"].startswith(QUERY_PREFIX)]
        if self.unrestored:
            items += [{"id": rule_id, "status": unrestored_state(rule_id, reason)}
                      for rule_id, reason in self.unrestored.items()]
            items.sort(key=lambda item: item["id"])
        return items

    def metrics(self) -> dict[str, Any]:
        """What ``GET /metrics`` shows, gathered from every worker: the per-plugin counters
        (summed over workers; a dead worker's counts go with it) and each rule's nodes."""
        counters: dict[tuple[str, str, str], list[float]] = {}
        rules: dict[str, Any] = {}
        for snap in self.engine.snapshots():
            for kind, plugin, function, calls, rows, errors, seconds in snap["meters"]:
                total = counters.setdefault((kind, plugin, function), [0, 0, 0, 0.0])
                for i, v in enumerate((calls, rows, errors, seconds)):
                    total[i] += v
            rules.update({k: v for k, v in snap["rules"].items() if not k.startswith(QUERY_PREFIX)})
        return {"counters": counters, "rules": rules}

    def rules_using(self, kind: str, name: str) -> list[str]:
        """Running rules that use plugin ``name`` of ``kind`` (the plugin manager asks before
        deleting or replacing a plugin)."""
        return self.engine.users_of(kind, name)

    # ---------------------------------------------------------------- the data plane's hooks

    def _installed(self) -> list[dict[str, Any]]:
        """The plugins a new worker loads: every installed one that loaded (passed its checks)."""
        return [{"kind": r.kind, "name": r.name, "path": str(self.data.root / r.file), "version": r.version}
                for r in self.store.list_plugins() if r.status == "loaded"]

    def _plugin_changed(self, kind: str, name: str, path: str | None, version: str) -> None:
        self.engine.plugin_changed(kind, name, path, version)

    def _quarantined(self, rule_id: str, reason: str) -> None:
        self.store.set_entry_state("rules", rule_id, QUARANTINE_STATE + reason)

    def _plugin_crashed(self, plugin: str, reason: str) -> None:
        """A plugin crashed a worker while it was being loaded: new workers must not load it."""
        for record in self.store.list_plugins():
            if record.name == plugin and record.status == "loaded":
                self.store.set_plugin_status(record.kind, record.name, "failed", reason)
                log.error("%s plugin %s is marked failed and no longer loaded: %s", record.kind, plugin, reason)

    def _stop_for_plugin(self, rule_ids: Any, reason: str) -> None:
        for rule_id in rule_ids:
            try:
                self.engine.stop_rule(rule_id)
                self._want(rule_id, "stopped")
                log.warning("rule %s %s", rule_id, reason)
            except NotFoundError:
                continue

    def query(self, sql: str, limit: int, timeout_s: float) -> dict[str, Any]:
        """``POST /query``: run ``sql`` as a temporary rule (in a worker) and return its rows."""
        check_sql_limits(sql)
        return self.engine.query(sql, limit, timeout_s)

    # ---------------------------------------------------------------- plugins, beside the built-ins

    def install_plugin(self, kind: str, name: str, location: str, shell_params: Sequence[str] = (),
                       functions: Sequence[str] | None = None, sha256: str | None = None) -> Any:
        """Install a plugin package; a plugin named as a built-in source or sink (the native
        ``file`` sink) takes the name over, and the built-in comes back if the install fails."""
        displaced = self.registry.find(kind, name)
        if displaced is not None and is_builtin(displaced):
            self.registry.unregister(kind, name)
        else:
            displaced = None
        try:
            return self.plugins.install(kind, name, location, shell_params, functions, sha256)
        except BaseException:
            if displaced is not None and self.registry.find(kind, name) is None:
                self.registry.register(displaced)
            raise

    def update_plugin(self, kind: str, name: str, location: str, shell_params: Sequence[str] = (),
                      functions: Sequence[str] | None = None, sha256: str | None = None) -> Any:
        """Install a new version; the running rules that use the plugin move to it: each is
        stopped at a batch boundary (draining what it took in) and started on the new version."""
        users = self.rules_using(kind, name)
        record = self.plugins.update(kind, name, location, shell_params, functions, sha256)
        for rule_id in users:
            try:
                self.engine.restart_rule(rule_id)
                log.info("rule %s moved to %s plugin %s %s", rule_id, kind, name, record.version)
            except PlutinoError as exc:
                log.error("rule %s could not move to %s plugin %s %s: %s", rule_id, kind, name, record.version, exc)
        return record

    def delete_plugin(self, kind: str, name: str, force: bool = False) -> list[str]:
        """Uninstall a plugin (``force`` stops the rules using it); a built-in of that name comes back."""
        stopped = self.plugins.delete(kind, name, force=force)
        builtin = builtin_plugin(kind, name)
        if builtin is not None and self.registry.find(kind, name) is None:
            self.registry.register(builtin)
            log.info("built-in %s %s is back in place of the deleted plugin", kind, name)
        return stopped

    # ---------------------------------------------------------------- the demo

    def install_bundled(self, folder: Path) -> list[str]:
        """Pack and install every bundled plugin in ``folder`` not installed yet (:mod:`plutino.demo`)."""
        return install_bundled(self, folder)

    def _install_demo(self, report: StartReport, bundled_dir: Path | None) -> None:
        install_demo(self, report, bundled_dir)


__all__ = ["Host", "QUERY_PREFIX", "StartReport", "bundled_plugins_dir"]
