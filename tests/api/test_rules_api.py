"""/rules in process: life cycle, status metrics, desired state in the store, errors."""

from __future__ import annotations

import pyarrow as pa

from helpers import wait_for
from plutino.io.memory import BROKER

from .api_helpers import install


def _stream(client, name: str = "s", topic: str | None = None) -> str:
    topic = topic or f"in-{name}-{id(client)}"
    r = client.post("/streams", json={"sql": f'CREATE STREAM {name} () WITH (TYPE="memory", DATASOURCE="{topic}")'})
    assert r.status_code == 201, r.text
    return topic


def _rule(rule_id: str, sql: str, topic: str, **extra):
    return {"id": rule_id, "sql": sql, "actions": [{"memory": {"topic": topic}}], **extra}


def test_rule_life_cycle_with_a_native_function(client, host, packages):
    install(client, packages, "echo")
    topic_in = _stream(client)
    out = BROKER.subscribe(f"out-{id(client)}")
    r = client.post("/rules", json=_rule("r1", "SELECT echo(a) AS e FROM s WHERE a > 1", out.topic))
    assert (r.status_code, r.text) == (201, "Rule r1 was created successfully.")
    assert client.get("/rules").json() == [{"id": "r1", "name": "r1", "status": "running", "message": ""}]
    assert client.get("/rules/r1").json()["sql"] == "SELECT echo(a) AS e FROM s WHERE a > 1"

    BROKER.publish(topic_in, pa.RecordBatch.from_pydict({"a": [1, 2, 3]}))
    batch = wait_for(lambda: out.get(timeout=0.05), "the rule's output")
    assert batch.to_pylist() == [{"e": 2}, {"e": 3}]
    status = client.get("/rules/r1/status").json()
    assert status["status"] == "running"
    assert status["source_s_0_records_in_total"] == 3
    assert status["function_echo_0_plugin"] == "echo" and status["function_echo_0_calls_total"] >= 1

    r = client.post("/rules/r1/stop")
    assert (r.status_code, r.text) == (200, "Rule r1 was stopped.")
    stopped = client.get("/rules/r1/status").json()
    assert (stopped["status"], stopped["message"]) == ("stopped", "canceled manually")
    assert client.get("/rules").json() == [
        {"id": "r1", "name": "r1", "status": "stopped", "message": "canceled manually"}]
    assert host.store.get_entry("rules", "r1").state == "stopped"
    assert client.post("/rules/r1/start").text == "Rule r1 was started"
    assert host.store.get_entry("rules", "r1").state == "running"
    assert client.post("/rules/r1/restart").text == "Rule r1 was restarted"
    assert client.get("/rules/r1/status").json()["status"] == "running"

    r = client.put("/rules/r1", json={"sql": "SELECT a FROM s", "actions": [{"memory": {"topic": out.topic}}]})
    assert (r.status_code, r.text) == (200, "Rule r1 was updated successfully.")
    assert client.get("/rules/r1").json()["sql"] == "SELECT a FROM s"

    r = client.delete("/rules/r1")
    assert (r.status_code, r.text) == (200, "Rule r1 is dropped.")
    assert client.get("/rules").json() == [] and host.store.get_entry("rules", "r1") is None
    out.close()


def test_a_rule_created_with_triggered_false_is_stored_stopped(client, host):
    _stream(client)
    r = client.post("/rules", json=_rule("idle", "SELECT * FROM s", "x", options={"triggered": False}))
    assert r.status_code == 201
    assert client.get("/rules").json() == [{"id": "idle", "name": "idle", "status": "stopped", "message": ""}]
    assert host.store.get_entry("rules", "idle").state == "stopped"


def test_rule_errors_have_ekuipers_shape(client):
    _stream(client)
    r = client.post("/rules", json=_rule("bad", "SELEC a FROM s", "x"))
    assert r.status_code == 400 and r.json()["error"] == 2001
    r = client.post("/rules", json=_rule("bad", "SELECT nope(a) FROM s", "x"))
    assert r.status_code == 400 and "nope" in r.json()["message"]
    r = client.post("/rules", json={"id": "bad", "sql": "SELECT a FROM s", "actions": [{"nosink": {}}]})
    assert r.status_code == 400
    assert r.json()["message"].startswith("rule 'bad': action 0 uses sink 'nosink', which is not installed")
    r = client.post("/rules", json={"id": "bad", "sql": "SELECT a FROM s", "actoins": []})
    assert r.status_code == 400 and "did you mean 'actions'?" in r.json()["message"]
    assert client.get("/rules").json() == []


def test_unknown_rule_is_404_for_every_verb(client):
    for method, path in [("get", "/rules/nope"), ("get", "/rules/nope/status"), ("delete", "/rules/nope"),
                         ("post", "/rules/nope/start"), ("post", "/rules/nope/stop"), ("post", "/rules/nope/restart")]:
        r = getattr(client, method)(path)
        assert r.status_code == 404, (method, path)
        assert r.json() == {"error": 1002, "message": "rule 'nope' not found; existing rules: none",
                            "type": "NotFoundError"}


def test_taken_rule_id_is_409_and_mismatched_put_400(client):
    _stream(client)
    assert client.post("/rules", json=_rule("r", "SELECT * FROM s", "x")).status_code == 201
    r = client.post("/rules", json=_rule("r", "SELECT * FROM s", "x"))
    assert r.status_code == 409 and r.json()["message"].startswith("rule 'r' already exists")
    r = client.put("/rules/r", json=_rule("other", "SELECT * FROM s", "x"))
    assert r.status_code == 400
    assert r.json()["message"] == "the body has id 'other', but the path says 'r'; make them the same"


def test_validate_checks_without_creating(client):
    _stream(client)
    assert client.post("/rules/validate", json=_rule("v", "SELECT * FROM s", "x")).json() == {"valid": True}
    r = client.post("/rules/validate", json=_rule("v", "SELECT * FROM nope", "x"))
    assert r.status_code == 400 and "nope" in r.json()["message"]
    assert client.get("/rules").json() == []


def test_the_query_prefix_is_reserved(client):
    _stream(client)
    r = client.post("/rules", json=_rule("_query_x", "SELECT * FROM s", "x"))
    assert r.status_code == 400 and "_query_" in r.json()["message"]


def test_a_stream_in_use_cannot_be_dropped(client):
    _stream(client)
    client.post("/rules", json=_rule("r", "SELECT * FROM s", "x"))
    r = client.delete("/streams/s")
    assert r.status_code == 400
    assert r.json()["message"] == (
        "stream 's' is used by rule(s) r; delete them first, or drop the definition anyway with "
        "DELETE /streams/s?force=true (the rules stay, and cannot start again until the stream is created again)")
