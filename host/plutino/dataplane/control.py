"""The control plane's view of rules: the engine's API, with the rules running in workers.

:class:`DataPlane` answers the same calls as :class:`plutino.engine.RuleManager` (the REST
layer cannot tell them apart), but this process never runs plugin code: streams and rule
definitions are kept here (and in the store, through the catalog's hooks); checking a rule
(which plans its SQL with the plugins' own validate() and creates its instances) and running
it happen in a worker, chosen by :mod:`.placement` and started by the :mod:`.supervisor`.

Every request to a worker has a deadline, so no REST request waits on plugin code without
one. Operations on one rule are serialised by a per-rule lock; nothing holds a lock shared
by all rules across a call to a worker.

When a worker dies, :meth:`DataPlane._died` puts its rules back: the other rules on a spare
worker at once, the culprit's rule on a worker of its own, or in quarantine after repeated
crashes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from plutino.config import DataPlaneSettings
from plutino.dataplane.memory_bridge import MemoryHub
from plutino.dataplane.placement import CrashRecord, least_loaded, memory_topics
from plutino.dataplane.protocol import WorkerGone
from plutino.dataplane.recovery import Recovery
from plutino.dataplane.rule_states import RuleStates
from plutino.dataplane.streams import StreamControl
from plutino.dataplane.supervisor import Supervisor, Worker
from plutino.engine.catalog import Catalog
from plutino.engine.errors import RuleError
from plutino.engine.rules import RuleDef
from plutino.errors import PlutinoError
from plutino.io.memory import BROKER

log = logging.getLogger("plutino.dataplane")
STATUS_TIMEOUT_S = 3.0
QUARANTINED = "quarantined"


class DataPlane(StreamControl, RuleStates, Recovery):
    """Streams and rules of one host, run by worker processes. Thread-safe."""

    def __init__(self, catalog: Catalog, registry: Any, settings: DataPlaneSettings, data_root: Path,
                 installed: Callable[[], list[dict[str, Any]]],
                 on_quarantine: Callable[[str, str], None] = lambda rule_id, reason: None,
                 on_plugin_crash: Callable[[str, str], None] = lambda plugin, reason: None) -> None:
        RuleStates.__init__(self)
        self.catalog = catalog
        self.registry = registry
        self.settings = settings
        self.installed = installed
        self.on_quarantine = on_quarantine
        self.on_plugin_crash = on_plugin_crash
        self.crashes = CrashRecord(settings.quarantine_crashes, settings.quarantine_window_s)
        self.quarantined: dict[str, str] = {}
        self.supervisor = Supervisor(settings, data_root, self._init_args, self._died, self._event)
        self.memory = MemoryHub(BROKER, lambda worker, op, **kw: worker.send(op, **kw),
                                lambda: [w for w in self.supervisor.workers if not w.dead])
        self._pool: list[Worker] = []
        self._where: dict[str, Worker] = {}
        self._topics: dict[str, Worker] = {}
        self._lock = threading.RLock()
        self._rule_locks: dict[str, threading.Lock] = {}
        self._isolated: set[str] = set()  # released from quarantine: a worker of their own

    def _init_args(self) -> dict[str, Any]:
        return {"data_root": str(self.supervisor.data_root), "plugins": self.installed(),
                "streams": [s.sql for s in self.catalog.streams()], "memory_remote": self.memory.remote_for(None)}

    def _event(self, worker: Worker, name: str, payload: Any) -> None:
        if name == "mem_readers":
            self.memory.readers_changed(worker, *payload)
        elif name == "mem_publish":
            self.memory.published(worker, *payload)
        elif name == "stopped":
            self.memory.forget(worker)
        elif name == "states":
            self._pushed(worker, *payload)

    @property
    def call_deadline(self) -> float:
        return self.settings.call_timeout_s * 3 + 5

    # -- plugins (the control plane's part) -----------------------------------------------
    def plugin_changed(self, kind: str, name: str, path: str | None, version: str = "") -> None:
        """An install, update (``path`` given) or delete (None): every worker follows."""
        if path is None:
            futures = self.supervisor.broadcast("remove_plugin", kind=kind, name=name)
        else:
            futures = self.supervisor.broadcast("add_plugin", kind=kind, name=name, path=path, version=version)
        self._settle(futures, f"loading {kind} plugin {name}")

    def _settle(self, futures: list[tuple[Worker, Future[Any]]], what: str) -> None:
        for worker, future in futures:
            try:
                future.result(self.call_deadline)
            except Exception as exc:  # noqa: BLE001 - one worker's trouble is logged, not raised
                log.error("worker %s: %s failed: %s", worker.name, what, exc)

    # -- placement -----------------------------------------------------------------------
    def _rule_lock(self, rule_id: str) -> threading.Lock:
        with self._lock:
            return self._rule_locks.setdefault(rule_id, threading.Lock())

    def _place(self, rule: RuleDef) -> Worker:
        """The worker ``rule`` runs on: where it is, else a new one by its isolation."""
        with self._lock:
            here = self._where.get(rule.id)
            if here is not None and not here.dead:
                return here
        topics = memory_topics(rule, self._memory_stream_of(rule))
        if rule.isolation == "dedicated" or self.crashes.crashed_before(rule.id) or rule.id in self._isolated:
            worker = self.supervisor.take("dedicated")
        else:
            worker = self._pool_worker(topics)
        with self._lock:
            self._where[rule.id] = worker
            worker.rules.add(rule.id)
            if worker.role != "dedicated":
                for topic in topics:
                    self._topics.setdefault(topic, worker)
        return worker

    def _pool_worker(self, topics: set[str]) -> Worker:
        with self._lock:
            self._pool = [w for w in self._pool if not w.dead]
            for topic in topics:
                joined = self._topics.get(topic)
                if joined is not None and not joined.dead:
                    return joined
            least = least_loaded(self._pool)
            if least is not None and len(self._pool) >= self.settings.pool_size():
                return least
        worker = self.supervisor.take("pool")
        with self._lock:
            self._pool.append(worker)
        return worker

    def _unplace(self, rule_id: str) -> None:
        with self._lock:
            worker = self._where.pop(rule_id, None)
            if worker is None:
                return
            worker.rules.discard(rule_id)
            for topic in [t for t, w in self._topics.items() if w is worker and not worker.rules]:
                del self._topics[topic]
        if worker.role == "dedicated" and not worker.rules:
            self.supervisor.retire(worker)

    def _worker_of(self, rule_id: str) -> Worker | None:
        with self._lock:
            worker = self._where.get(rule_id)
        return worker if worker is not None and not worker.dead else None

    # -- rules ---------------------------------------------------------------------------
    def validate_rule(self, body: Mapping[str, Any] | RuleDef) -> RuleDef:
        rule = body if isinstance(body, RuleDef) else RuleDef.from_dict(body)
        worker = self._worker_of(rule.id) or self._pool_worker(set())
        self._ask(worker, "validate", rule.id, rule=rule.to_dict())
        return rule

    def create_rule(self, body: Mapping[str, Any]) -> RuleDef:
        rule = RuleDef.from_dict(body)
        with self._rule_lock(rule.id):
            if self.catalog.has_rule(rule.id):
                self.catalog.put_rule(rule)  # raises the catalog's "already exists"
            worker = self._place(rule)  # checked where it will run
            if not rule.triggered:
                try:
                    self._ask(worker, "validate", rule.id, rule=rule.to_dict(), instances=True)
                except BaseException:
                    self._unplace(rule.id)
                    raise
            # a rule that starts now is checked by its start, in the same request: its SQL and
            # plugins as ``validate`` would, its instances made (and configs checked) by the
            # start itself; no extra create and close (a close that hangs would cost the worker)
            self.catalog.put_rule(rule)
            self._set(rule.id, "stopped")
            if rule.triggered:
                try:
                    self._start(rule)
                except BaseException:  # refused at its start: not created, as if refused by the check
                    self.catalog.delete_rule(rule.id)
                    self._forget_state(rule.id)
                    raise
        return rule

    def update_rule(self, body: Mapping[str, Any]) -> RuleDef:
        rule = RuleDef.from_dict(body)
        with self._rule_lock(rule.id):
            old = self.catalog.get_rule(rule.id)
            worker = self._worker_of(rule.id) or self._pool_worker(set())
            self._ask(worker, "validate", rule.id, rule=rule.to_dict(), instances=False)
            was_running = self._running(rule.id)
            self._stop(rule.id, "updated", unplace=True)
            self.catalog.put_rule(rule, replace=True)
            if was_running:  # eKuiper's: an update restarts a running rule; a stopped one stays stopped
                try:
                    self._start(rule)
                except BaseException:  # refused at its start (a sink's config, say): the old rule stays
                    self.catalog.put_rule(old, replace=True)
                    if was_running:
                        self._start_again(old)
                    raise
        return rule

    def _start_again(self, rule: RuleDef) -> None:
        try:
            self._start(rule)
        except Exception as exc:  # noqa: BLE001 - the caller reports the first error
            log.error("rule %s could not be started again after a refused update: %s", rule.id, exc)

    def start_rule(self, rule_id: str) -> None:
        with self._rule_lock(rule_id):
            rule = self.catalog.get_rule(rule_id)
            self._release(rule_id)
            if self._running(rule_id):
                return
            self._start(rule)

    def stop_rule(self, rule_id: str) -> None:
        with self._rule_lock(rule_id):
            self.catalog.get_rule(rule_id)
            self._stop(rule_id, "canceled manually")

    def restart_rule(self, rule_id: str) -> None:
        with self._rule_lock(rule_id):
            rule = self.catalog.get_rule(rule_id)
            self._release(rule_id)
            self._stop(rule_id, "restarting")
            self._start(rule)

    def _release(self, rule_id: str) -> None:
        """A user starts a quarantined rule: it runs again, on a worker of its own."""
        if self.quarantined.pop(rule_id, None) is not None:
            self._isolated.add(rule_id)

    def delete_rule(self, rule_id: str) -> None:
        with self._rule_lock(rule_id):
            self.catalog.get_rule(rule_id)
            self._states[rule_id] = "deleting"  # a death meanwhile must not start it again
            worker = self._worker_of(rule_id)
            if worker is not None:
                try:
                    self._ask(worker, "forget", rule_id, rule_id=rule_id)
                except WorkerGone:
                    pass  # gone with its worker
            self._unplace(rule_id)
            self.catalog.delete_rule(rule_id)
            self._forget_state(rule_id)
            self.quarantined.pop(rule_id, None)
            self._isolated.discard(rule_id)
            self.crashes.forget(rule_id)
        with self._lock:
            self._rule_locks.pop(rule_id, None)

    def _start(self, rule: RuleDef) -> None:
        worker = self._place(rule)
        self._states[rule.id] = "starting"
        try:
            self._set(rule.id, worker.call("start", self.call_deadline, rule=rule.to_dict()))
        except WorkerGone:
            return  # it started, and its worker died: _died starts it again (or quarantines it)
        except BaseException as exc:
            self._states[rule.id] = f"stopped: {exc}"
            self._unplace(rule.id)
            raise

    def _stop(self, rule_id: str, reason: str, unplace: bool = False) -> None:
        worker = self._worker_of(rule_id)
        if worker is not None:
            self._states[rule_id] = "stopping"  # a death meanwhile must not start it again
            try:
                self._set(rule_id, self._ask(worker, "stop", rule_id, rule_id=rule_id, reason=reason))
            except WorkerGone:
                self._states[rule_id] = f"stopped: {reason}"
            if unplace or worker.role == "dedicated":
                self._forget_on(worker, rule_id)
        elif self._states.get(rule_id, "stopped") == "running":
            self._states[rule_id] = f"stopped: {reason}"

    def _forget_on(self, worker: Worker, rule_id: str) -> None:
        try:
            self._ask(worker, "forget", rule_id, rule_id=rule_id)
        except PlutinoError:
            pass
        self._unplace(rule_id)

    def _ask(self, worker: Worker, op: str, for_rule: str, /, **kwargs: Any) -> Any:
        """Run ``op`` for ``rule_id`` on ``worker``; a worker that dies meanwhile is reported
        as a :class:`RuleError` naming the culprit."""
        deadline = self.call_deadline
        if op in ("stop", "forget", "start") and self.catalog.has_rule(for_rule):  # a stop drains first
            deadline += self.catalog.get_rule(for_rule).drain_timeout_ms / 1000
        try:
            return worker.call(op, deadline, **kwargs)
        except WorkerGone as exc:
            if op in ("stop", "forget", "state"):
                raise
            raise RuleError(f"rule '{for_rule}': {exc}") from None

    def _running(self, rule_id: str) -> bool:
        return self._states.get(rule_id) in ("running", "starting") and self._worker_of(rule_id) is not None

    # -- status --------------------------------------------------------------------------
    def rule_status(self, rule_id: str) -> dict[str, Any]:
        self.catalog.get_rule(rule_id)
        worker = self._worker_of(rule_id)
        status: dict[str, Any] = {"status": self._state(rule_id)}
        if worker is not None:
            try:
                asked_at = time.monotonic()
                reply = worker.call("status", STATUS_TIMEOUT_S, rule_id=rule_id)
                if reply.pop("known", True):
                    status = reply
                    self._adopt(rule_id, status.get("status", "stopped"), asked_at)
            except PlutinoError as exc:
                status["statusError"] = str(exc)
            status["worker"] = f"{worker.name} (pid {worker.pid}, {worker.role})"
        if rule_id in self.quarantined:
            status["status"] = f"stopped: {self.quarantined[rule_id]}"
        if self.crashes.crashed_before(rule_id):
            status["lastCrash"] = self.crashes.last[rule_id]
            status["crashesInWindow"] = self.crashes.recent(rule_id)
        return status

    def describe_rule(self, rule_id: str) -> dict[str, Any]:
        return self.catalog.get_rule(rule_id).to_dict()

    def list_rules(self) -> list[dict[str, Any]]:
        """Every rule and its state, from this side's record alone: no request to a worker, so a
        list of 10,000 rules costs what building it costs, however busy the workers are. The
        record is kept by this side's own requests and by the state changes the workers push."""
        return [{"id": r.id, "status": self._state(r.id)} for r in self.catalog.rules()]

    def snapshots(self) -> list[dict[str, Any]]:
        """Every live worker's metrics snapshot (``GET /metrics``)."""
        with self._lock:
            workers = [w for w in self.supervisor.workers if not w.dead and w.ready.done()]
        asked = [(w, w.send("snapshot")) for w in workers]
        out = []
        for worker, future in asked:
            try:
                out.append(future.result(STATUS_TIMEOUT_S))
            except Exception:  # noqa: BLE001
                log.warning("worker %s did not give its metrics within %g s", worker.name, STATUS_TIMEOUT_S)
        return out

    def users_of(self, kind: str, name: str) -> list[str]:
        """Running rules that use plugin ``name`` of ``kind``."""
        with self._lock:
            workers = {w for w in self._where.values() if not w.dead}
        found: list[str] = []
        for worker in workers:
            try:
                found += worker.call("users", STATUS_TIMEOUT_S, kind=kind, name=name)
            except PlutinoError as exc:
                log.warning("worker %s: could not list the users of %s %s: %s", worker.name, kind, name, exc)
        return sorted(found)

    def query(self, sql: str, limit: int, timeout_s: float) -> dict[str, Any]:
        worker = self._pool_worker(set())
        try:
            return worker.call("query", timeout_s + self.call_deadline, sql=sql, limit=limit, timeout_s=timeout_s)
        except WorkerGone as exc:
            raise RuleError(f"the query's worker died: {exc}") from None

    def shutdown(self) -> None:
        self.supervisor.close()
        self.memory.close()

__all__ = ["DataPlane"]
