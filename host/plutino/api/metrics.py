"""``/metrics``: the host's metrics in Prometheus' text format.

eKuiper's names first (its Prometheus exporter's, so eKuiper's dashboards work): per rule and
node ``kuiper_{source,op,sink}_records_in_total``, ``_records_out_total``,
``_exceptions_total``, ``_process_latency_us`` and ``_buffer_length`` with labels ``rule``,
``type`` (source, op, sink), ``op`` (the node's id: the stream, ``2_project``, ``mqtt_0``) and
``instance``, in eKuiper's meanings (a sink's records are messages: :mod:`plutino.engine.metrics`);
``kuiper_rule_status{ruleID}`` (1 running, 0 stopped, -1 stopped by an error) and
``kuiper_rule_count{status="running"|"stop"}``.

Plutino's own, kept for its users' dashboards: per plugin (counted at the edge by
:mod:`plutino.engine.metering`, across all rules, for the life of the process)
``plutino_plugin_calls_total``, ``_rows_total``, ``_errors_total`` and ``_seconds_total`` with
labels ``kind``, ``plugin`` and ``function``. Per rule and node (from the rule's current or last
run, reset when it restarts), in rows: ``plutino_rule_records_in_total``,
``_records_out_total``, ``_exceptions_total``, ``_process_latency_us``. Plus
``plutino_rule_running``, ``plutino_plugin_installed`` and ``plutino_uptime_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from plutino.engine.ekuiper_status import split_state, stopped_by_error

from .deps import get_host

router = APIRouter(tags=["metrics"])

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: Any) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_: str, samples: Iterable[tuple[str, Any]]) -> None:
        self.lines.append(f"# HELP {name} {help_}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            shown = repr(float(value)) if isinstance(value, float) else str(int(value))
            self.lines.append(f"{name}{labels} {shown}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(host: Any) -> str:
    """The exposition text of ``host``'s metrics."""
    w = _Writer()
    w.family("plutino_uptime_seconds", "gauge", "Seconds since the host started.",
             [("", round(time.time() - host.started_at, 3))])
    w.family("plutino_plugin_installed", "gauge", "Installed plugins (1 loaded, 0 failed to load).",
             [(_labels(kind=r.kind, plugin=r.name, version=r.version), 1 if r.status == "loaded" else 0)
              for r in host.store.list_plugins()])
    gathered = host.metrics()
    counters = sorted(gathered["counters"].items())
    for name, index, help_, kind in (
        ("plutino_plugin_calls_total", 0, "Data-path calls into the plugin (next, write, call, aggregate).",
         "counter"),
        ("plutino_plugin_rows_total", 1, "Rows through those calls (out of a source, into a sink or function).",
         "counter"),
        ("plutino_plugin_errors_total", 2, "Calls that failed.", "counter"),
        ("plutino_plugin_seconds_total", 3, "Seconds spent in those calls (a source's include waiting).",
         "counter"),
    ):
        w.family(name, kind, help_, [(_labels(kind=k, plugin=p, function=f), values[index])
                                     for (k, p, f), values in counters])
    rules = sorted(gathered["rules"].items())
    w.family("plutino_rule_running", "gauge", "1 while the rule runs.",
             [(_labels(rule=rule_id), 1 if r["state"] == "running" else 0) for rule_id, r in rules])
    nodes = [(rule_id, n) for rule_id, r in rules for n in r["nodes"]]
    for name, index, help_, kind in (
        ("plutino_rule_records_in_total", 1, "Rows into the node since the rule started.", "counter"),
        ("plutino_rule_records_out_total", 2, "Rows out of the node since the rule started.", "counter"),
        ("plutino_rule_exceptions_total", 3, "Failures in the node since the rule started.", "counter"),
        ("plutino_rule_process_latency_us", 4, "Microseconds the node took for its last batch.", "gauge"),
    ):
        w.family(name, kind, help_, [(_labels(rule=rule, node=n[0]), n[index]) for rule, n in nodes])
    _ekuiper(w, nodes, host.list_rules())
    return w.text()


def _node_labels(rule: str, name: str) -> tuple[str, str]:
    """(node type, labels) of node ``name`` (``source_demo_0``, ``op_2_project_0``,
    ``sink_mqtt_0_0``): eKuiper's labels rule, type, op and instance."""
    kind, _, rest = name.partition("_")
    op, _, instance = rest.rpartition("_")
    return kind, _labels(rule=rule, type=kind, op=op, instance=instance)


def _ekuiper(w: _Writer, nodes: list[tuple[str, Any]], states: list[dict[str, Any]]) -> None:
    """eKuiper's metric families (its Prometheus exporter's names and labels)."""
    labelled = [(*_node_labels(rule, n[0]), n) for rule, n in nodes if len(n) >= 8]
    for kind in ("source", "op", "sink"):
        mine = [(labels, n) for k, labels, n in labelled if k == kind]
        prefix = f"kuiper_{kind}"
        for name, index, help_, type_ in (
            ("records_in_total", 5, f"Total number of messages received by the operation of {prefix}", "counter"),
            ("records_out_total", 6, f"Total number of messages published by the operation of {prefix}", "counter"),
            ("exceptions_total", 3, f"Total number of user exceptions of {prefix}", "counter"),
            ("process_latency_us", 4, f"Process latency in microseconds of {prefix}", "gauge"),
            ("buffer_length", 7, f"The length of the buffer in front of {prefix}", "gauge"),
        ):
            w.family(f"{prefix}_{name}", type_, help_, [(labels, n[index]) for labels, n in mine])
    users = states  # the host's list leaves out POST /query's temporary rules
    w.family("kuiper_rule_status", "gauge", "1 running, 0 stopped, -1 stopped by an error.",
             [(_labels(ruleID=item["id"]), _rule_code(str(item["status"]))) for item in users])
    running = sum(1 for item in users if split_state(str(item["status"]))[0] == "running")
    w.family("kuiper_rule_count", "gauge", "Rules running and stopped.",
             [(_labels(status="running"), running), (_labels(status="stop"), len(users) - running)])


def _rule_code(state: str) -> int:
    if split_state(state)[0] == "running":
        return 1
    return -1 if stopped_by_error(state) else 0


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"example": 'plutino_plugin_calls_total{kind="function",'
                                                                   'plugin="echo",function="echo"} 42'}}}})
def metrics(host: Any = Depends(get_host)) -> PlainTextResponse:
    """Prometheus text format: eKuiper's ``kuiper_*`` families; Plutino's per-plugin calls, rows,
    errors and seconds and per-rule node counters."""
    return PlainTextResponse(render(host), media_type=CONTENT_TYPE)


__all__ = ["CONTENT_TYPE", "render", "router"]
