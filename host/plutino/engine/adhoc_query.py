"""Ad-hoc queries (``POST /query``, ``plutino query``): run a SELECT against a stream for a number
of rows or seconds and return the rows.

The query runs as a temporary rule (id ``_query_<random>``, never stored, hidden from
``GET /rules``) whose one action is the built-in ``memory`` sink on a private topic; the
caller reads that topic until it has ``limit`` rows, the time is up or the stream ended, then
deletes the rule. Everything a rule checks is checked, with the same messages. It runs
where the rules run: in a worker process of the server, or in-process in a script.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import time
import uuid
from typing import Any

from plutino_contract.protocols import EndOfStream

from .errors import RuleError

#: Rules with ids starting so are the temporary rules of ``POST /query``: never stored, not listed.
QUERY_PREFIX = "_query_"
_POLL_S = 0.05


def run_query(engine: Any, registry: Any, sql: str, limit: int, timeout_s: float) -> dict[str, Any]:
    """Run ``sql`` until ``limit`` rows, ``timeout_s`` seconds or the end of its stream."""
    sink = registry.find("sink", "memory")
    broker = getattr(sink, "broker", None)
    if broker is None:
        raise RuleError("queries need the built-in memory sink, which is not registered in this host")
    rule_id = f"{QUERY_PREFIX}{uuid.uuid4().hex[:12]}"
    topic = f"plutino.query.{rule_id}"
    subscription = broker.subscribe(topic)
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    columns: list[str] = []
    complete = False
    try:
        engine.create_rule({"id": rule_id, "sql": sql, "actions": [{"memory": {"topic": topic}}]})
        try:
            columns = [f.name for f in engine.runtime(rule_id).plan.fields]
            deadline = started + timeout_s
            while len(rows) < limit:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch = subscription.get(timeout=min(_POLL_S, left))
                except EndOfStream:
                    complete = True
                    break
                if batch is None:
                    if engine.rule_status(rule_id).get("status") != "running" and subscription.queue.empty():
                        complete = True  # a bounded stream ended and everything was read
                        break
                    continue
                columns = list(batch.schema.names) or columns
                rows.extend(_jsonable(r) for r in batch.to_pylist()[: limit - len(rows)])
            complete = complete or len(rows) >= limit
            errors = _errors(engine.rule_status(rule_id))
        finally:
            subscription.close()  # first: a sink waiting on the full topic queue lets go
            engine.delete_rule(rule_id)
    finally:
        subscription.close()
    return {"columns": columns, "rows": rows, "elapsed_s": round(time.monotonic() - started, 3),
            "complete": complete, "errors": errors}


def _errors(status: dict[str, Any]) -> list[str]:
    """What went wrong while the query ran: the reason it stopped, each node's last error (with
    how many there were) and the rule's warning."""
    out = []
    state = str(status.get("status", ""))
    message = str(status.get("message", "")) or (state.split(": ", 1)[1] if state.startswith("stopped: ") else "")
    if message and message != "end of stream" and not message.startswith("canceled"):
        out.append(message)
    for key, count in status.items():
        if key.endswith("_exceptions_total") and count:
            node = key[: -len("_exceptions_total")]
            out.append(f"{node}: {status.get(node + '_last_exception', '')} ({count} time(s))")
    if status.get("warning"):
        out.append(str(status["warning"]))
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


__all__ = ["QUERY_PREFIX", "run_query"]
