"""``/metrics``: the host's metrics in Prometheus' text format (Plutino extension).

Per plugin (counted at the edge by :mod:`plutino.engine.metering`, across all rules, for the
life of the process): ``plutino_plugin_calls_total``, ``_rows_total``, ``_errors_total`` and
``_seconds_total`` with labels ``kind``, ``plugin`` and ``function``. Per rule and node (from
the rule's current or last run, reset when it restarts): ``plutino_rule_records_in_total``,
``_records_out_total``, ``_exceptions_total``, ``_process_latency_us``. Plus
``plutino_rule_running``, ``plutino_plugin_installed`` and ``plutino_uptime_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

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
    return w.text()


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"example": 'plutino_plugin_calls_total{kind="function",'
                                                                   'plugin="echo",function="echo"} 42'}}}})
def metrics(host: Any = Depends(get_host)) -> PlainTextResponse:
    """Prometheus text format: per-plugin calls, rows, errors and seconds; per-rule node counters."""
    return PlainTextResponse(render(host), media_type=CONTENT_TYPE)


__all__ = ["CONTENT_TYPE", "render", "router"]
