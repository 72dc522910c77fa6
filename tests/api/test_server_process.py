"""The real server: `python -m plutino serve` in a child process, driven over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import wait_for

from .api_helpers import ServerProcess, install, subprocess_env


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _sink_rows(server: ServerProcess, rule_id: str) -> int:
    status = server.get(f"/rules/{rule_id}/status").json()
    return sum(v for k, v in status.items() if k.startswith("sink_") and k.endswith("_rows_out_total"))


def test_install_a_plugin_from_a_file_url_use_it_in_a_rule_update_and_delete(server, packages, echo_v2, tmp_path):
    install(server, packages, "random", "file", "echo")
    assert server.get("/plugins/functions/echo").json()["version"] == "1.0.0"
    r = server.post("/streams", json={"sql": 'CREATE STREAM demo () WITH (TYPE="random", CONF_KEY="ext")'})
    assert (r.status_code, r.text) == (201, "Stream demo is created.")
    out = tmp_path / "out.jsonl"
    rule = {"id": "r1", "sql": "SELECT count, echo(name) AS who FROM demo WHERE count >= 0",
            "actions": [{"file": {"path": str(out)}}]}
    r = server.post("/rules", json=rule)
    assert (r.status_code, r.text) == (201, "Rule r1 was created successfully.")

    wait_for(lambda: _sink_rows(server, "r1") >= 2, "rule r1 to write rows")
    status = server.get("/rules/r1/status").json()
    assert status["status"] == "running" and status["function_echo_0_plugin"] == "echo"
    rows = wait_for(lambda: _lines(out), f"rows in {out}")
    assert set(rows[0]) == {"count", "who"} and rows[0]["who"] == "sensor"

    r = server.put("/plugins/functions/echo", json={"name": "echo", "file": echo_v2.as_uri()})
    assert (r.status_code, r.text) == (200, "function plugin echo is updated to 1.1.0")
    assert server.get("/plugins/functions/echo").json()["version"] == "1.1.0"

    out2 = tmp_path / "out2.jsonl"
    r = server.put("/rules/r1", json={"sql": "SELECT echo(count) AS n FROM demo",
                                      "actions": [{"file": {"path": str(out2)}}]})
    assert (r.status_code, r.text) == (200, "Rule r1 was updated successfully.")
    assert set(wait_for(lambda: _lines(out2), f"rows in {out2}")[0]) == {"n"}
    assert server.get("/rules/r1/status").json()["status"] == "running"

    assert server.delete("/rules/r1").text == "Rule r1 is dropped."
    assert server.delete("/streams/demo").text == "Stream demo is dropped."
    assert server.delete("/plugins/functions/echo").text == "function plugin echo is deleted"
    assert server.get("/rules").json() == [] and server.get("/streams").json() == []
    assert server.get("/plugins/functions").json() == []


def test_errors_over_http_have_ekuipers_shape(server, tmp_path):
    r = server.post("/streams", json={"sql": "CREATE STREM s ()"})
    assert r.status_code == 400 and r.json()["error"] == 2001
    assert r.json()["message"].startswith("expected 'STREAM', got 'STREM' at line 1, col 8")
    r = server.get("/rules/nope/status")
    assert r.status_code == 404
    assert r.json() == {"error": 1002, "message": "rule 'nope' not found; existing rules: none",
                        "type": "NotFoundError"}
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 truncated")
    r = server.post("/plugins/functions", json={"name": "bad", "file": bad.as_uri()})
    assert r.status_code == 400 and set(r.json()) == {"error", "message", "type"}
    assert r.json()["message"] == ("package bad.zip is not a zip file, or a damaged or truncated one (14 bytes); give"
                                   " the path or URL of a .zip made by `plutino plugin pack`, or download it again")


def test_a_restart_brings_back_plugins_streams_and_rules_in_their_state(tmp_path, packages):
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    out = tmp_path / "run.jsonl"
    try:
        install(server, packages, "random", "file", "echo")
        server.post("/streams", json={"sql": 'CREATE STREAM demo () WITH (TYPE="random", CONF_KEY="ext")'})
        for rule_id, path in (("running", out), ("stopped", tmp_path / "stopped.jsonl")):
            r = server.post("/rules", json={"id": rule_id, "sql": "SELECT echo(count) AS c FROM demo",
                                            "actions": [{"file": {"path": str(path)}}]})
            assert r.status_code == 201, r.text
        assert server.post("/rules/stopped/stop").status_code == 200
        wait_for(lambda: _sink_rows(server, "running") >= 1, "rule 'running' to write")
    finally:
        assert server.stop() == 0, server.output()
    written = len(_lines(out))
    assert written >= 1  # flushed at shutdown
    assert "shutting down: stopping rules" in server.output()

    server.start()
    try:
        assert server.get("/streams").json() == ["demo"]
        assert server.get("/rules").json() == [
            {"id": "running", "name": "running", "status": "running", "message": ""},
            {"id": "stopped", "name": "stopped", "status": "stopped", "message": ""}]
        for kind, name in (("sources", "random"), ("sinks", "file"), ("functions", "echo")):
            assert server.get(f"/plugins/{kind}/{name}").json()["status"] == "loaded"
        wait_for(lambda: len(_lines(out)) > written, "the restarted rule to write again")
    finally:
        assert server.stop() == 0


def test_a_port_in_use_is_refused_with_a_clear_message(server, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "plutino", "serve", "--port", str(server.port), "--data-dir",
                           str(tmp_path / "other")], env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{server.port}: Address already in use; another server" in proc.stderr


def test_demo_installs_the_bundled_plugins_and_runs_the_demo_rule(tmp_path, plugin_build):
    server = ServerProcess(tmp_path / "data", "--demo", "--bundled-dir", str(plugin_build)).start()
    try:
        assert server.get("/plugins/functions").json() == ["accumulateWordCount", "echo", "fastmath", "geo"]
        assert server.get("/rules").json() == [{"id": "demo", "name": "demo", "status": "running", "message": ""}]
        out = tmp_path / "data" / "out" / "demo.jsonl"
        row = wait_for(lambda: _lines(out), "the demo rule's output")[0]
        assert set(row) == {"count", "temperature", "t2", "sensor"}
        assert row["t2"] == row["temperature"] * 2 + 1 and row["sensor"] == "SENSOR"
    finally:
        assert server.stop() == 0
