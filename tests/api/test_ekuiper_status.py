"""What an eKuiper client reads about rules and the host, through a real server and a real
mosquitto: ``status`` and ``message`` of GET /rules and GET /rules/{id}/status (after a manual
stop, after an error), numeric ``connection_status`` with the broker up and down, a sink's
records (messages, with and without sendSingle) and rows, ``/metrics`` under eKuiper's
``kuiper_*`` names and labels, and GET /'s ``os``/``arch`` in Go's words (docs/rest.md)."""

from __future__ import annotations

import importlib.util
import json
import platform
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import wait_for

from .api_helpers import ServerProcess, install

# tests/io's mosquitto helpers (imported by path: a package named "io" is the standard library's)
_IOHELPERS = Path(__file__).resolve().parents[1] / "io" / "iohelpers.py"
_spec = importlib.util.spec_from_file_location("io_iohelpers", _IOHELPERS)
assert _spec is not None and _spec.loader is not None
iohelpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(iohelpers)

N = 20
STREAM = 'CREATE STREAM ev (id BIGINT) WITH (DATASOURCE="ek/in", FORMAT="json")'


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    b = iohelpers.Mosquitto(tmp_path_factory.mktemp("ek-broker"))
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, broker: Any) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("ek") / "data"
    (data / "etc" / "sources").mkdir(parents=True)
    (data / "etc" / "sources" / "mqtt.yaml").write_text(f"default:\n  server: {broker.url}\n  qos: 1\n")
    proc = ServerProcess(data).start()
    assert proc.post("/streams", json={"sql": STREAM}).status_code == 201
    yield proc
    proc.stop()


def status(server: ServerProcess, rule_id: str) -> dict[str, Any]:
    r = server.get(f"/rules/{rule_id}/status")
    assert r.status_code == 200, r.text
    return r.json()


def listed(server: ServerProcess, rule_id: str) -> dict[str, Any]:
    return next(item for item in server.get("/rules").json() if item["id"] == rule_id)


def metric_lines(server: ServerProcess) -> dict[str, float]:
    """``name{labels}`` -> value of every sample of GET /metrics."""
    text = server.get("/metrics").text
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


def test_get_root_names_the_platform_as_go_does(server):
    info = server.get("/").json()
    go_arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
    assert info["os"] == "linux"
    assert info["arch"] == go_arch
    assert isinstance(info["upTimeSeconds"], int) and info["version"]


def test_running_rule_metrics_then_a_manual_stop(server, broker):
    client = iohelpers.MqttClient(broker)
    try:
        client.subscribe("ek/single")
        client.subscribe("ek/batch")
        rule = {"id": "ek", "sql": "SELECT id FROM ev", "actions": [
            {"mqtt": {"server": broker.url, "topic": "ek/single", "sendSingle": True}},
            {"mqtt": {"server": broker.url, "topic": "ek/batch"}}]}
        assert server.post("/rules", json=rule).status_code == 201
        wait_for(lambda: status(server, "ek").get("source_ev_0_connection_status") == 1, "the source to connect")
        running = status(server, "ek")
        assert (running["status"], running["message"], running["nextStartTimestamp"]) == ("running", "", 0)
        assert running["lastStartTimestamp"] > 0 and running["source_ev_0_connection_state"] == "connected"
        assert listed(server, "ek") == {"id": "ek", "name": "ek", "status": "running", "message": ""}

        client.publish("ek/in", [json.dumps({"id": i}).encode() for i in range(N)])
        wait_for(lambda: len(client.payloads("ek/single")) == N
                 and sum(len(json.loads(p)) for p in client.payloads("ek/batch")) == N, "both sinks to publish")
        s = wait_for(lambda: (lambda s: s if s["sink_mqtt_0_0_rows_out_total"] == s["sink_mqtt_1_0_rows_out_total"] == N
                                        else None)(status(server, "ek")), "the status to count both sinks' rows")
        batches = len(client.payloads("ek/batch"))
    finally:
        client.close()

    # a source and an operator count rows; each MQTT message here is one row
    assert s["source_ev_0_records_in_total"] == s["source_ev_0_records_out_total"] == N
    assert s["op_1_project_0_records_in_total"] == s["op_1_project_0_records_out_total"] == N
    assert s["source_ev_0_messages_processed_total"] == N and s["source_ev_0_exceptions_total"] == 0
    # a sink counts messages: one per row with sendSingle, one per batch without; rows apart
    assert s["sink_mqtt_0_0_records_in_total"] == s["sink_mqtt_0_0_records_out_total"] == N
    assert s["sink_mqtt_1_0_records_in_total"] == s["sink_mqtt_1_0_records_out_total"] == batches
    for sink in ("sink_mqtt_0_0", "sink_mqtt_1_0"):
        assert s[f"{sink}_rows_in_total"] == s[f"{sink}_rows_out_total"] == N
        assert s[f"{sink}_connection_status"] == 1 and s[f"{sink}_connection_last_connected_time"] > 0
        assert s[f"{sink}_last_invocation"] >= s["lastStartTimestamp"]

    lines = metric_lines(server)
    assert lines['kuiper_source_records_in_total{rule="ek",type="source",op="ev",instance="0"}'] == N
    assert lines['kuiper_op_records_out_total{rule="ek",type="op",op="1_project",instance="0"}'] == N
    assert lines['kuiper_sink_records_out_total{rule="ek",type="sink",op="mqtt_0",instance="0"}'] == N
    assert lines['kuiper_sink_records_in_total{rule="ek",type="sink",op="mqtt_1",instance="0"}'] == batches
    assert lines['kuiper_sink_exceptions_total{rule="ek",type="sink",op="mqtt_1",instance="0"}'] == 0
    assert 'kuiper_sink_process_latency_us{rule="ek",type="sink",op="mqtt_1",instance="0"}' in lines
    assert 'kuiper_source_buffer_length{rule="ek",type="source",op="ev",instance="0"}' in lines
    assert lines['kuiper_rule_status{ruleID="ek"}'] == 1
    assert lines['plutino_rule_records_out_total{rule="ek",node="sink_mqtt_1_0"}'] == N  # Plutino's: rows

    assert server.post("/rules/ek/stop").status_code == 200
    stopped = status(server, "ek")
    assert (stopped["status"], stopped["message"]) == ("stopped", "canceled manually")
    assert stopped["lastStopTimestamp"] >= stopped["lastStartTimestamp"] > 0
    assert stopped["sink_mqtt_0_0_records_out_total"] == N  # the last run's metrics stay, as eKuiper's
    assert listed(server, "ek") == {"id": "ek", "name": "ek", "status": "stopped", "message": "canceled manually"}
    lines = metric_lines(server)
    assert lines['kuiper_rule_status{ruleID="ek"}'] == 0
    assert lines['kuiper_rule_count{status="stop"}'] >= 1


def test_a_named_rule_never_started(server):
    rule = {"id": "named", "name": "My rule", "sql": "SELECT id FROM ev", "actions": [{"log": {}}],
            "options": {"triggered": False}}
    assert server.post("/rules", json=rule).status_code == 201
    assert listed(server, "named") == {"id": "named", "name": "My rule", "status": "stopped", "message": ""}
    s = status(server, "named")
    assert (s["status"], s["message"], s["lastStartTimestamp"], s["nextStartTimestamp"]) == ("stopped", "", 0, 0)


def test_connection_status_follows_the_broker(server, broker):
    rule = {"id": "conn", "sql": "SELECT id FROM ev", "actions": [{"log": {}}]}
    assert server.post("/rules", json=rule).status_code == 201
    key = "source_ev_0_connection_status"
    wait_for(lambda: status(server, "conn").get(key) == 1, "the source to connect")
    broker.stop()
    try:
        down = wait_for(lambda: (lambda s: s if s.get(key) == -1 else None)(status(server, "conn")),
                        "the source to see the broker go")
        assert down["source_ev_0_connection_state"] == "disconnected"
        assert down["source_ev_0_connection_last_disconnected_time"] > 0
        assert down["status"] == "running"  # a lost connection is retried, the rule runs on
    finally:
        broker.start()
    wait_for(lambda: status(server, "conn").get(key) == 1, "the source to reconnect", timeout=60)
    assert metric_lines(server)['kuiper_rule_status{ruleID="conn"}'] == 1


def test_a_rule_stopped_by_an_error(server, packages):
    """A rule whose function plugin fails to load at the next start: stopped, with the error as
    its message, and -1 in kuiper_rule_status."""
    install(server, packages, "echo")
    rule = {"id": "fx", "sql": "SELECT echo(id) AS e FROM ev", "actions": [{"log": {}}]}
    assert server.post("/rules", json=rule).status_code == 201
    assert status(server, "fx")["status"] == "running"
    server.stop()
    (so,) = [p for p in server.data_dir.rglob("echo*.so")]
    so.write_bytes(b"not a shared object")
    server.start()
    s = status(server, "fx")
    assert s["status"] == "stopped" and s["message"] not in ("", "canceled manually"), s
    assert not s["message"].startswith("stopped"), s
    item = listed(server, "fx")
    assert (item["status"], item["message"]) == ("stopped", s["message"])
    assert metric_lines(server)['kuiper_rule_status{ruleID="fx"}'] == -1
    assert re.search(r"echo", s["message"]), s["message"]
