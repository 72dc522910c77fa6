"""/ping, /, /query, /metrics, the error mapping and the OpenAPI spec, in process."""

from __future__ import annotations

import json

import pyarrow as pa

from helpers import wait_for
from plutino.api.errors import classify, error_body
from plutino.api.openapi import spec_text
from plutino.engine.errors import AlreadyExistsError, NotFoundError, SqlError
from plutino.errors import PluginIOError, PlutinoError
from plutino.io.memory import BROKER
from plutino.packages.format import PackageError

from .api_helpers import REPO, install


def test_ping_and_server_info(client, host):
    r = client.get("/ping")
    assert (r.status_code, r.content) == (200, b"")
    info = client.get("/").json()
    assert info["version"] and info["dataDir"] == str(host.data.root) and info["upTimeSeconds"] >= 0


def test_unknown_paths_and_methods_answer_in_the_error_shape(client):
    r = client.get("/nothing")
    assert r.status_code == 404
    assert r.json() == {"error": 1002, "message": "no such path: GET /nothing; the API is listed at /docs",
                        "type": "HTTPException"}
    r = client.delete("/ping")
    assert r.status_code == 405 and r.json()["message"] == "DELETE is not allowed on /ping; the API is listed at /docs"


def test_query_runs_a_select_for_n_rows(client, packages):
    install(client, packages, "random", "fastmath")
    client.post("/streams", json={"sql": 'CREATE STREAM demo () WITH (TYPE="random", CONF_KEY="ext")'})
    r = client.post("/query", json={"sql": "SELECT count, mul2add1(count) AS c2 FROM demo", "limit": 3, "timeout": 20})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["columns"] == ["count", "c2"] and answer["complete"] is True
    assert len(answer["rows"]) == 3
    assert all(row["c2"] == row["count"] * 2 + 1 for row in answer["rows"])
    assert client.get("/rules").json() == []  # the temporary rule is gone


def test_query_errors_are_the_rule_errors(client):
    client.post("/streams", json={"sql": 'CREATE STREAM s () WITH (TYPE="memory", DATASOURCE="q")'})
    r = client.post("/query", json={"sql": "SELECT nope(a) FROM s"})
    assert r.status_code == 400 and "nope" in r.json()["message"]
    assert client.post("/query", json={"sql": "SELECT a FROM s", "limit": 0}).status_code == 400


def test_metrics_count_calls_rows_and_errors_per_plugin(client, packages):
    install(client, packages, "echo")
    client.post("/streams", json={"sql": 'CREATE STREAM s () WITH (TYPE="memory", DATASOURCE="metrics-in")'})
    out = BROKER.subscribe("metrics-out")
    client.post("/rules", json={"id": "m", "sql": "SELECT echo(a) AS a FROM s",
                                "actions": [{"memory": {"topic": "metrics-out"}}]})
    BROKER.publish("metrics-in", pa.RecordBatch.from_pydict({"a": [1, 2, 3]}))
    wait_for(lambda: out.get(timeout=0.05), "the rule's output")
    out.close()
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = r.text.splitlines()
    assert 'plutino_plugin_calls_total{kind="function",plugin="echo",function="echo"} 1' in lines
    assert 'plutino_plugin_rows_total{kind="function",plugin="echo",function="echo"} 3' in lines
    assert 'plutino_plugin_errors_total{kind="function",plugin="echo",function="echo"} 0' in lines
    assert 'plutino_plugin_rows_total{kind="sink",plugin="memory",function=""} 3' in lines
    assert 'plutino_plugin_installed{kind="function",plugin="echo",version="1.0.0"} 1' in lines
    assert 'plutino_rule_running{rule="m"} 1' in lines
    assert 'plutino_rule_records_in_total{rule="m",node="source_s_0"} 3' in lines
    assert "# TYPE plutino_plugin_seconds_total counter" in lines


def test_each_error_class_has_one_status_and_code():
    assert classify(NotFoundError("rule", "r", [])) == (404, 1002)
    assert classify(AlreadyExistsError("rule", "r", "fix")) == (409, 1000)
    assert classify(SqlError("bad", line=1, col=2)) == (400, 2001)
    assert classify(PluginIOError("p", "write", "PLUTINO_IO", "disk full")) == (400, 1003)
    assert classify(PackageError("bad zip")) == (400, 1000)
    assert classify(PlutinoError("anything")) == (400, 1000)
    status, body = error_body(ZeroDivisionError("division by zero"))
    assert status == 500 and body["message"].startswith("internal error: ZeroDivisionError: division by zero;")


def test_docs_openapi_json_is_the_generated_spec():
    checked_in = (REPO / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert checked_in == spec_text(), "docs/openapi.json is stale: python -m plutino.api.openapi > docs/openapi.json"
    paths = json.loads(checked_in)["paths"]
    for path in ("/ping", "/streams", "/streams/{name}", "/rules", "/rules/{rule_id}/status", "/plugins/sources",
                 "/plugins/functions/{name}/register", "/plugins/udfs", "/metadata/sinks", "/metrics", "/query",
                 "/plugins/functions/{name}/check"):
        assert path in paths, path


def test_the_app_serves_its_spec(client):
    assert client.get("/openapi.json").json()["info"]["title"] == "Plutino"
