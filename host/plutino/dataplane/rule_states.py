"""The control plane's record of every rule's state, kept without asking the workers.

``GET /rules`` lists every rule with its state. Asking each worker for its rules' states on
every list made the list as slow as the busiest worker: with 500 rules under traffic its p99
was 2.7 s (bench/rules_scale.py), and a worker stuck in a drain held it up entirely. So the
control plane keeps the record itself, from three sources:

- its own requests: a start's or a stop's answer is the rule's state (:meth:`RuleStates._set`);
- the workers' pushes: each worker sends the states that changed since its last push every
  ``STATE_PUSH_S`` (a rule that ended by itself, or whose start failed in a restart), and all
  of them every ``STATE_RESYNC_S`` (:mod:`.worker`; :meth:`RuleStates._pushed`);
- a status request's answer (``GET /rules/{id}/status`` asks the worker anyway).

A pushed state is taken only when it was read after this side last set the rule's state
itself, and never while this side is starting, stopping or deleting the rule: an answer on
its way must not be overwritten by an older push. Both sides stamp with ``time.monotonic()``
(CLOCK_MONOTONIC, one clock for every process of the machine). Part of
:class:`~plutino.dataplane.control.DataPlane`.
"""

from __future__ import annotations

import time
from typing import Any

#: States this side sets while a worker acts on the rule: no push overrides them.
CHANGING = ("starting", "stopping", "deleting")


class RuleStates:
    """The state record of :class:`~plutino.dataplane.control.DataPlane`."""

    _where: dict[str, Any]
    quarantined: dict[str, str]

    def __init__(self) -> None:
        self._states: dict[str, str] = {}
        self._set_at: dict[str, float] = {}  # when this side last set a rule's state itself

    def _set(self, rule_id: str, state: str) -> None:
        """A state this side learnt from its own request (a start's or stop's answer)."""
        self._states[rule_id] = state
        self._set_at[rule_id] = time.monotonic()

    def _forget_state(self, rule_id: str) -> None:
        self._states.pop(rule_id, None)
        self._set_at.pop(rule_id, None)

    def _adopt(self, rule_id: str, state: str, read_at: float) -> None:
        """Take a worker's word for a rule's state, read at ``read_at``, unless this side is
        changing the state or set it after that."""
        if rule_id not in self._states or self._states[rule_id] in CHANGING:
            return
        if read_at > self._set_at.get(rule_id, 0.0):
            self._states[rule_id] = state

    def _pushed(self, worker: Any, read_at: float, states: dict[str, str]) -> None:
        """A worker's push: the states of its rules that changed (or all of them), read at
        ``read_at``. A rule that has moved to another worker meanwhile is not its to report."""
        for rule_id, state in states.items():
            if self._where.get(rule_id) is worker:
                self._adopt(rule_id, state, read_at)

    def _state(self, rule_id: str) -> str:
        if rule_id in self.quarantined:
            return f"stopped: {self.quarantined[rule_id]}"
        return self._states.get(rule_id, "stopped")


__all__ = ["CHANGING", "RuleStates"]
