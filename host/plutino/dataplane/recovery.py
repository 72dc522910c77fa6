"""What the control plane does when a worker dies: put its rules back, or quarantine them.

The supervisor reports each death with its culprit (:class:`~plutino.dataplane.supervisor.Death`).
The rules of the dead worker that should be running are started again: the culprit's rule
on a worker of its own (a second crash takes nobody else down), the others on a spare worker
at once; a rule whose plugins crashed their worker ``quarantine_crashes`` times within the
window is quarantined instead. Part of :class:`~plutino.dataplane.control.DataPlane`.
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
    call_deadline: float
    _lock: Any
    _where: dict[str, Worker]
    _topics: dict[str, Worker]
    _states: dict[str, str]

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
        self._restart(restart)

    def _restart(self, rule_ids: list[str]) -> None:
        pending = []
        for rule_id in rule_ids:
            lock = self._rule_lock(rule_id)
            with lock:
                if self._states.get(rule_id) not in ("running", "starting"):
                    continue  # stopped or deleted while its worker was dying
                try:
                    rule = self.catalog.get_rule(rule_id)
                    worker = self._place(rule)
                    self._states[rule_id] = "starting"
                    pending.append((rule_id, worker, worker.send("start", rule=rule.to_dict())))
                except Exception as exc:  # noqa: BLE001
                    self._states[rule_id] = f"stopped: could not be restarted: {exc}"
                    log.error("rule %s could not be restarted: %s", rule_id, exc)
        for rule_id, worker, future in pending:
            try:
                self._states[rule_id] = future.result(self.call_deadline)
            except WorkerGone:
                continue  # that worker died too: its own death report restarts the rule
            except Exception as exc:  # noqa: BLE001
                self._states[rule_id] = f"stopped: could not be restarted: {exc}"
                self._unplace(rule_id)
                log.error("rule %s could not be restarted on worker %s: %s", rule_id, worker.name, exc)


__all__ = ["Recovery"]
