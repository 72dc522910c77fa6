"""A running rule's status (eKuiper's ``GET /rules/{id}/status``), read from its parts."""

from __future__ import annotations

from typing import Any


def rule_status(rt: Any) -> dict[str, Any]:  # a runtime.RuleRuntime (which imports this module)
    """The state, then every node's metrics: the source(s), the operators, the sinks, the
    plugin functions."""
    out: dict[str, Any] = {"status": rt.state, "lastStartTimestamp": rt.last_start_ms,
                           "lastStopTimestamp": rt.last_stop_ms}
    m = rt.source_metrics
    m.buffer_length = rt._handoffs.backlog(0)
    if rt._feed is not None:
        m.connection_status = rt._feed.status()
        if rt._feed.redelivered():
            m.extra["records_redelivered_total"] = rt._feed.redelivered()
        adopted = rt._feed.sessions_adopted()
        if adopted is not None:
            m.extra["sessions_adopted"] = adopted
    out.update(m.flat())
    if rt._joins is not None:
        out.update(rt._joins.status())
    if rt.pipeline.watch is not None and rt.pipeline.watch.warning:
        out["warning"] = rt.pipeline.watch.warning
    for node in rt.pipeline.nodes:
        out.update(node.flat())
    for i, sm in enumerate(rt.sink_metrics):
        sm.buffer_length = rt._handoffs.backlog(i + 1)
        out.update(sm.flat())
    for use in rt.plan.uses:
        p = f"function_{use.name}_{use.index}"
        out.update({f"{p}_plugin": use.plugin, f"{p}_calls_total": use.calls, f"{p}_exceptions_total": use.errors})
    return out


__all__ = ["rule_status"]
