"""Restoring the stored streams and rules at start-up, and the rows that cannot be restored.

A row that cannot be restored (a body that is not JSON, damaged outside Plutino; a statement
or a rule this Plutino refuses) is skipped: the log names the row and the reason, and the
server starts with the rest. A rule skipped so is not forgotten: its reason is kept
(``Host.unrestored``), so ``GET /rules`` lists it as stopped with the reason as its message,
its status says the same, ``PUT /rules/{id}`` replaces it with a good definition and
``DELETE /rules/{id}`` removes the row.
"""

from __future__ import annotations

import logging
from typing import Any

from plutino.engine import Catalog
from plutino.errors import PlutinoError
from plutino.store import Entry, Store

log = logging.getLogger("plutino.host")
QUARANTINE_STATE = "quarantined: "  # a rule's stored state while it is quarantined


class UnrestoredRule(PlutinoError):
    """A request for a rule whose stored row could not be restored at start-up (400)."""

    def __init__(self, rule_id: str, reason: str, action: str) -> None:
        self.rule_id = rule_id
        super().__init__(f"cannot {action} rule '{rule_id}': it could not be restored at start-up ({reason});"
                         f" {fix_unrestored(rule_id)}")


def fix_unrestored(rule_id: str) -> str:
    return f"replace it with PUT /rules/{rule_id} or delete it with DELETE /rules/{rule_id}"


def unrestored_state(rule_id: str, reason: str) -> str:
    """The state a rule that could not be restored shows (``GET /rules``, its status)."""
    return f"stopped: {reason}; {fix_unrestored(rule_id)}"


def restore_catalog(store: Store, catalog: Catalog, report: Any, quarantined: dict[str, str],
                    unrestored: dict[str, str]) -> list[str]:
    """Load the stored streams and rules into ``catalog`` (``report``: a ``StartReport``);
    note quarantined rules in ``quarantined`` and the rules that cannot be restored in
    ``unrestored``, by id. Return the ids of the rules to start."""
    for entry in store.list_entries("streams"):
        try:
            _readable(entry, "name")
            catalog.load(streams=[entry.body])
            report.streams.append(entry.id)
        except Exception as exc:  # noqa: BLE001 - a row damaged in any way must not stop the start
            reason = _reason(exc)
            report.failures[f"stream/{entry.id}"] = reason
            log.error("stream %s could not be restored and is left out: %s", entry.id, reason)
    wanted: list[str] = []
    for entry in store.list_entries("rules"):
        try:
            _readable(entry, "id")
            catalog.load(rules=[entry.body])
        except Exception as exc:  # noqa: BLE001 - the same
            reason = _reason(exc)
            unrestored[entry.id] = reason
            report.failures[f"rule/{entry.id}"] = reason
            log.error("rule %s could not be restored and is not started: %s; %s", entry.id, reason,
                      fix_unrestored(entry.id))
            continue
        if entry.state.startswith(QUARANTINE_STATE):
            quarantined[entry.id] = entry.state[len(QUARANTINE_STATE):]
            log.warning("rule %s is not started: %s", entry.id, entry.state[len(QUARANTINE_STATE):])
            continue
        # no recorded state (a rule written by an older host): its triggered option decides
        if entry.state == "running" or (entry.state == "" and catalog.get_rule(entry.id).triggered):
            wanted.append(entry.id)
    return wanted


def _readable(entry: Entry, key: str) -> None:
    if entry.damage:
        raise PlutinoError(entry.damage)
    named = entry.body.get(key, entry.id)
    if named != entry.id:
        raise PlutinoError(f"the store's row {entry.id} holds the definition of {named!r}")


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, PlutinoError) else f"{type(exc).__name__}: {exc}"


__all__ = ["QUARANTINE_STATE", "UnrestoredRule", "fix_unrestored", "restore_catalog", "unrestored_state"]
