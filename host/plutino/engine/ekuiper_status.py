"""A rule's state in eKuiper's words: ``status`` and ``message``.

Plutino keeps a rule's state as one string: ``"running"``, ``"stopped"`` or
``"stopped: <why>"`` (``"stopped: canceled manually"``, ``"stopped: end of stream"``, the error
that stopped it), and, on the control plane, ``"starting"``, ``"stopping"`` or ``"deleting"``
while a worker acts on it. eKuiper's clients read two fields instead (eKuiper's
``GET /rules/{id}/status``): ``status``, one of eKuiper's state names (``running``,
``stopped``, ``starting``, ``stopping``), and ``message``, why it stopped (``""`` while running).
The REST API answers in that shape (:func:`rule_status`, :func:`list_item`); the engine's own
Python API keeps the one string.
"""

from __future__ import annotations

from typing import Any, Mapping

#: Plutino's transitional states and the eKuiper state name each is shown as.
_TRANSITIONS = {"running": "running", "starting": "starting", "stopping": "stopping", "deleting": "stopping"}
#: Stops that are no failure: eKuiper's Prometheus ``kuiper_rule_status`` shows them as 0, others -1.
NORMAL_STOPS = frozenset({"", "canceled manually", "end of stream", "host shutting down"})


def split_state(state: str) -> tuple[str, str]:
    """Plutino's state string -> eKuiper's (status, message)."""
    shown = _TRANSITIONS.get(state)
    if shown is not None:
        return shown, ""
    if state.startswith("stopped"):
        return "stopped", state[len("stopped"):].lstrip(":").strip()
    return "stopped", state  # an unknown word: say it, stopped


def stopped_by_error(state: str) -> bool:
    """True when the rule stopped by itself for an error (a failed start, a crash, a quarantine)."""
    status, message = split_state(state)
    return status == "stopped" and message not in NORMAL_STOPS and not message.endswith(" was deleted")


def rule_status(status: Mapping[str, Any]) -> dict[str, Any]:
    """eKuiper's ``GET /rules/{id}/status`` from the engine's: ``status``, ``message``,
    ``lastStartTimestamp``, ``lastStopTimestamp``, ``nextStartTimestamp`` (ms; 0: never; Plutino
    has no scheduled rules, so the next start is always 0), then every node's metrics and
    Plutino's additions, in the engine's order."""
    state, message = split_state(str(status.get("status", "stopped")))
    out: dict[str, Any] = {
        "status": state,
        "message": message,
        "lastStartTimestamp": status.get("lastStartTimestamp", 0),
        "lastStopTimestamp": status.get("lastStopTimestamp", 0),
        "nextStartTimestamp": 0,
    }
    for key, value in status.items():
        if key not in out:
            out[key] = value
    return out


def list_item(item: Mapping[str, Any], name: str | None = None) -> dict[str, Any]:
    """One item of eKuiper's ``GET /rules``: ``id``, ``name`` (the rule's, else its id),
    ``status`` and ``message``."""
    state, message = split_state(str(item.get("status", "stopped")))
    return {"id": item["id"], "name": name or item["id"], "status": state, "message": message}


def topo(status: Mapping[str, Any]) -> dict[str, Any]:
    """eKuiper's ``GET /rules/{id}/topo`` from a rule's status: its nodes (``source_<name>``,
    ``op_<n>_<kind>``, ``sink_<name>_<i>``, as eKuiper names them) and the edges between them:
    every source to the first operator, the operators in order, the last to every sink."""
    nodes: dict[str, list[str]] = {"source": [], "op": [], "sink": []}
    for key in status:
        if not key.endswith("_records_in_total"):
            continue
        name = key[: -len("_records_in_total")]
        kind = name.split("_", 1)[0]
        if kind in nodes and name.endswith("_0"):
            node = name[:-2]
            if node not in nodes[kind]:
                nodes[kind].append(node)
    edges: dict[str, list[str]] = {}
    first = nodes["op"][:1] or nodes["sink"]
    for source in nodes["source"]:
        edges[source] = list(first)
    for a, b in zip(nodes["op"], nodes["op"][1:]):
        edges[a] = [b]
    if nodes["op"]:
        edges[nodes["op"][-1]] = list(nodes["sink"])
    return {"sources": nodes["source"], "edges": edges}


__all__ = ["topo", "NORMAL_STOPS", "list_item", "rule_status", "split_state", "stopped_by_error"]
