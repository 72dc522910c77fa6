"""What the control plane does when a worker dies: put its rules back, or quarantine them.

The supervisor reports each death with its culprit (:class:`~plutino.dataplane.supervisor.Death`).
The rules of the dead worker that should be running are started again: the culprit's rule
on a worker of its own (a second crash takes nobody else down), the others on a spare worker
at once; a rule whose plugins crashed their worker ``quarantine_crashes`` times within the
window is quarantined instead. Part of :class:`~plutino.dataplane.control.DataPlane`.

:meth:`Recovery.start_many` also starts the stored rules when the host starts: thousands of
them, with their requests to the workers in flight together.
"""

from __future__ import annotations

import logging
from typing import Any

from plutino.dataplane.protocol import WorkerGone
from plutino.dataplane.supervisor import Death, Worker

log = logging.getLogger("plutino.dataplane")


class Recovery:
    """The death handling of :class:`~plutino.dataplane.control.DataPlane`."""

    catalog: Any
    settings: Any
    memory: Any
    crashes: Any
    quarantined: dict[str, str]
    on_quarantine: Any
    on_plugin_crash: Any
    _lock: Any
    _where: dict[str, Worker]
    _topics: dict[str, Worker]
    _states: dict[str, str]
    _set: Any  # RuleStates._set

    @property
    def call_deadline(self) -> float:  # the DataPlane's
        raise NotImplementedError

    def _rule_lock(self, rule_id: str) -> Any:
        raise NotImplementedError

    def _place(self, rule: Any) -> Worker:
        raise NotImplementedError

    def _unplace(self, rule_id: str) -> None:
        raise NotImplementedError

    def _died(self, worker: Worker, death: Death) -> None:
        reason = death.reason()
        self.memory.forget(worker)
        culprit = death.culprit.rule if death.culprit is not None else ""
        if death.culprit is not None and not death.culprit.rule:
            self.on_plugin_crash(death.culprit.plugin, reason)
        with self._lock:
            moved = [r for r, w in self._where.items() if w is worker]
            for rule_id in moved:
                del self._where[rule_id]
            for topic in [t for t, w in self._topics.items() if w is worker]:
                del self._topics[topic]
        restart = []
        for rule_id in moved:
            if self._states.get(rule_id) not in ("running", "starting") or not self.catalog.has_rule(rule_id):
                continue
            if rule_id == culprit:
                count = self.crashes.add(rule_id, reason)
                if count >= self.settings.quarantine_crashes:
                    why = (f"quarantined: its plugins crashed its worker {count} times within"
                           f" {self.settings.quarantine_window_s:g} s; last: {reason}; start it again with"
                           f" POST /rules/{rule_id}/start once the plugin is fixed")
                    self.quarantined[rule_id] = why
                    self._states[rule_id] = f"stopped: {why}"
                    log.error("rule %s %s", rule_id, why)
                    self.on_quarantine(rule_id, why)
                    continue
                log.error("rule %s: %s; restarting it on a worker of its own", rule_id, reason)
            restart.append(rule_id)
        self.start_many(restart, restarting=True)

    def start_many(self, rule_ids: list[str], restarting: bool = False) -> dict[str, BaseException]:
        """Start many rules with their requests in flight together, not one round trip after
        another: the host's start-up with thousands of stored rules, and the rules of a dead
        worker. ``restarting``: only the rules this side still wants running (a rule stopped or
        deleted while its worker was dying stays so). Return the failures by rule id."""
        failures: dict[str, BaseException] = {}
        pending = []
        for rule_id in rule_ids:
            with self._rule_lock(rule_id):
                state = self._states.get(rule_id)
                if (state not in ("running", "starting")) if restarting else state == "running":
                    continue
                if not self.catalog.has_rule(rule_id):
                    continue  # deleted meanwhile
                try:
                    rule = self.catalog.get_rule(rule_id)
                    worker = self._place(rule)
                    self._states[rule_id] = "starting"
                    pending.append((rule_id, worker, worker.send("start", rule=rule.to_dict())))
                except Exception as exc:  # noqa: BLE001 - one rule's failure is its own
                    self._failed_start(rule_id, exc, restarting, failures)
        for rule_id, _worker, future in pending:
            try:
                self._set(rule_id, future.result(self.call_deadline))
            except WorkerGone:
                continue  # that worker died too: its own death report restarts the rule
            except Exception as exc:  # noqa: BLE001
                self._failed_start(rule_id, exc, restarting, failures)
                self._unplace(rule_id)
        return failures

    def mark_starting(self, rule_ids: list[str]) -> None:
        """Rules :meth:`start_many` will start in the background: listed as "starting" until then."""
        for rule_id in rule_ids:
            self._states.setdefault(rule_id, "starting")

    def _failed_start(self, rule_id: str, exc: BaseException, restarting: bool,
                      failures: dict[str, BaseException]) -> None:
        failures[rule_id] = exc
        if restarting:
            self._states[rule_id] = f"stopped: could not be restarted: {exc}"
            log.error("rule %s could not be restarted: %s", rule_id, exc)
        else:
            self._states[rule_id] = f"stopped: {exc}"


__all__ = ["Recovery"]
