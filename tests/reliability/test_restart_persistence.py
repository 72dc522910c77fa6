"""Streams, rules (with their running/stopped state) and plugins survive a restart of the real
server (`python -m plutino serve`, stopped with SIGTERM) and come back exactly as they were."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from api.api_helpers import ServerProcess, install
from helpers import wait_for

STREAMS = {
    "demo": 'CREATE STREAM demo () WITH (TYPE="random", CONF_KEY="ext", FORMAT="json")',
    "readings": 'CREATE STREAM readings (id BIGINT, temperature FLOAT, tags ARRAY(STRING)) '
                'WITH (TYPE="memory", DATASOURCE="readings/in", TIMESTAMP="id")',
}


def _rules(out: Path) -> list[dict[str, Any]]:
    return [
        {"id": "running", "sql": "SELECT echo(count) AS c, temperature FROM demo WHERE count > 5",
         "actions": [{"file": {"path": str(out / "running.jsonl")}}]},
        {"id": "stopped", "sql": "SELECT count FROM demo", "actions": [{"log": {}}],
         "options": {"bufferLength": 4}},
        {"id": "never_started", "sql": "SELECT temperature, tags FROM readings WHERE temperature > 20",
         "actions": [{"memory": {"topic": "readings/out"}}], "options": {"triggered": False}},
        {"id": "windowed", "sql": "SELECT count(*) AS n FROM demo GROUP BY TUMBLINGWINDOW(ss, 1)",
         "actions": [{"log": {}}, {"memory": {"topic": "w"}}]},
    ]


def _everything(server: ServerProcess) -> dict[str, Any]:
    """What the API says about every stream, rule and plugin (less the counters that move)."""
    state: dict[str, Any] = {"streams": server.get("/streams").json(), "rules": server.get("/rules").json()}
    for name in state["streams"]:
        state[f"stream/{name}"] = server.get(f"/streams/{name}").json()
    for item in state["rules"]:
        state[f"rule/{item['id']}"] = server.get(f"/rules/{item['id']}").json()
        state[f"status/{item['id']}"] = server.get(f"/rules/{item['id']}/status").json()["status"]
    for kind in ("sources", "sinks", "functions"):
        state[kind] = server.get(f"/plugins/{kind}").json()
        for name in state[kind]:
            state[f"plugin/{kind}/{name}"] = server.get(f"/plugins/{kind}/{name}").json()
    state["udfs"] = server.get("/plugins/udfs").json()
    return state


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_streams_rules_and_plugins_come_back_as_they_were_after_restarts(tmp_path, zips):
    data, out = tmp_path / "data", tmp_path / "out"
    out.mkdir()
    packages = {name: zips / f"{name}.zip" for name in ("random", "file", "echo")}
    server = ServerProcess(data).start()
    try:
        install(server, packages, "random", "file", "echo")
        for sql in STREAMS.values():
            assert server.post("/streams", json={"sql": sql}).status_code == 201
        for rule in _rules(out):
            r = server.post("/rules", json=rule)
            assert r.status_code == 201, r.text
        assert server.post("/rules/stopped/stop").status_code == 200
        wait_for(lambda: _lines(out / "running.jsonl") > 0 or server.get("/rules/running/status").json()
                 .get("sink_file_0_0_records_in_total", 0) > 0, "rule 'running' to write")
        before = _everything(server)
    finally:
        assert server.stop() == 0, server.output()
    assert {r["id"]: (r["status"], r["message"]) for r in before["rules"]} == {
        "never_started": ("stopped", ""), "running": ("running", ""), "stopped": ("stopped", "canceled manually"),
        "windowed": ("running", "")}
    written = _lines(out / "running.jsonl")
    assert written > 0  # flushed at shutdown

    server.start()
    try:
        after = _everything(server)
        # a rule stopped by hand comes back "stopped" without a message (a new process has not run it)
        expected = json.loads(json.dumps(before).replace('"canceled manually"', '""'))
        assert after == expected
        wait_for(lambda: _lines(out / "running.jsonl") > written, "the restarted rule to write again")
        # change the states, and restart again: the new states come back
        assert server.post("/rules/running/stop").status_code == 200
        assert server.post("/rules/stopped/start").status_code == 200
        assert server.delete("/rules/windowed").status_code == 200
        assert server.delete("/plugins/functions/echo?force=true").status_code == 200
        changed = _everything(server)
    finally:
        assert server.stop() == 0, server.output()

    server.start()
    try:
        again = _everything(server)
        assert {r["id"]: r["status"] for r in again["rules"]} == {
            "never_started": "stopped", "running": "stopped", "stopped": "running"}
        assert again["functions"] == [] and again["udfs"] == []
        expected = json.loads(json.dumps(changed).replace('"canceled manually"', '""'))
        assert again == expected
    finally:
        assert server.stop() == 0, server.output()
