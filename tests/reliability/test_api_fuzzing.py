"""API fuzzing: schemathesis against the published spec (docs/openapi.json) and the real server,
for a bounded number of cases: no 5xx, no crash. Then the classic bad requests by hand:
malformed JSON, wrong types, unknown fields, huge bodies — each a 4xx with a message.

The fuzzed server is kept on loopback: installs may read files only from an empty directory,
and every http(s) download to anywhere but 127.0.0.1 goes to a proxy that is not there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.api_helpers import REPO, ServerProcess, subprocess_env
from plutino.api import create_app
from plutino.api.access import AccessSettings
from plutino.host import Host

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

MAX_EXAMPLES = 100  # per operation and phase of schemathesis
SEED = 20240901


@pytest.fixture
def loopback_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    empty = tmp_path / "no-packages-here"
    empty.mkdir()
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("PLUTINO_ALLOWED_FILE_DIRS", str(empty))
    monkeypatch.setenv("PLUTINO_DOWNLOAD_TIMEOUT", "2")
    return empty


def test_schemathesis_finds_no_server_error_and_no_crash(tmp_path, loopback_only):
    pytest.importorskip("schemathesis")
    server = ServerProcess(tmp_path / "data").start()
    report = tmp_path / "schemathesis.json"
    try:
        run = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", str(REPO / "docs" / "openapi.json"),
             "--url", server.url, "--checks", "not_a_server_error", "--max-examples", str(MAX_EXAMPLES),
             "--seed", str(SEED), "--workers", "1", "--request-timeout", "30", "--no-color",
             "--report", "json", "--report-json-path", str(report)],
            env=subprocess_env(), capture_output=True, text=True, timeout=170, cwd=tmp_path)
        result = json.loads(report.read_text())
        cases = result["test_cases"]
        print(f"\nschemathesis {result['schemathesis_version']}: {cases['generated']} cases over "
              f"{result['operations']['tested']} operations in {result['running_time']:.1f} s")
        assert result["failures"] == [] and result["errors"] == [], run.stdout[-4000:]
        assert cases["with_failures"] == 0 and cases["errored"] == 0
        assert run.returncode == 0, run.stdout[-4000:]
        assert result["operations"]["tested"] == result["operations"]["total"] >= 40
        assert cases["generated"] >= 1000
        # no crash: the server still answers, and never logged a bug
        assert server.get("/ping").status_code == 200
        assert server.proc is not None and server.proc.poll() is None
    finally:
        code = server.stop()
    assert code == 0
    assert "this is a bug in Plutino" not in server.output()
    assert "Traceback" not in server.output()


# ---------------------------------------------------------------- bad requests by hand


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    host = Host(tmp_path / "data")
    host.start()
    with TestClient(create_app(host, AccessSettings(max_body_bytes=64 * 1024)), raise_server_exceptions=False) as c:
        yield c
    host.close()


def _error(response) -> str:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    body = response.json()
    assert set(body) >= {"error", "message"} and body["message"], body
    return body["message"]


@pytest.mark.parametrize("path", ["/streams", "/rules", "/rules/validate", "/plugins/functions", "/query"])
def test_malformed_json_is_a_400_with_a_message(client, path):
    r = client.post(path, content=b'{"sql": "CREATE STREAM', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert _error(r).startswith("the request body is not valid JSON (")


@pytest.mark.parametrize("path", ["/streams", "/rules", "/plugins/sinks", "/query"])
def test_a_body_that_is_not_an_object_or_is_missing_is_a_400(client, path):
    for body in (b"[1, 2]", b'"text"', b"42", b"null", b""):
        r = client.post(path, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400, (body, r.text)
        _error(r)


@pytest.mark.parametrize("path, body, message", [
    ("/streams", {"sql": 5}, "sql: Input should be a valid string (got 5); see the request shapes in /docs"),
    ("/query", {"sql": "SELECT 1", "limit": "many"},
     "limit: Input should be a valid integer, unable to parse string as an integer (got 'many'); see the request "
     "shapes in /docs"),
    ("/query", {"sql": "SELECT 1", "timeout": -1},
     "timeout: Input should be greater than 0 (got -1); see the request shapes in /docs"),
    ("/plugins/functions", {"name": ["echo"], "file": "file:///x.zip"},
     "name: Input should be a valid string (got ['echo']); see the request shapes in /docs"),
    ("/plugins/functions", {"name": "echo", "file": "file:///x.zip", "shellParas": "-v"},
     "shellParas: Input should be a valid list (got '-v'); see the request shapes in /docs"),
    ("/rules", {"id": 7, "sql": "SELECT 1", "actions": []},
     "id: Input should be a valid string (got 7); see the request shapes in /docs"),
    ("/rules", {"id": "r1", "sql": "SELECT * FROM s", "actions": {"log": {}}},
     "actions: Input should be a valid list (got {'log': {}}); see the request shapes in /docs"),
])
def test_wrong_types_are_a_400_naming_the_field(client, path, body, message):
    r = client.post(path, json=body)
    assert r.status_code == 400
    assert _error(r) == message


@pytest.mark.parametrize("path, body, message", [
    ("/streams", {"sql": 'CREATE STREAM s () WITH (TYPE="memory")', "sqll": "x"},
     "unknown field 'sqll' in the request body; see the request shapes in /docs"),
    ("/plugins/functions", {"name": "echo", "file": "file:///x.zip", "sha": "abc"},
     "unknown field 'sha' in the request body; see the request shapes in /docs"),
    ("/query", {"sql": "SELECT 1", "rows": 5},
     "unknown field 'rows' in the request body; see the request shapes in /docs"),
    ("/plugins/functions/echo/register", {"functions": ["echo"], "extra": True},
     "unknown field 'extra' in the request body; see the request shapes in /docs"),
    ("/rules", {"id": "r1", "sql": "SELECT * FROM s", "actoins": [{"log": {}}]},
     "unknown rule field 'actoins'; did you mean 'actions'? a rule has id, sql, actions and options"),
])
def test_unknown_fields_are_a_400_naming_the_field(client, path, body, message):
    r = client.post(path, json=body)
    assert r.status_code == 400
    assert _error(r) == message


def test_a_huge_body_is_a_413_before_any_route_reads_it(client):
    huge = json.dumps({"sql": "CREATE STREAM s () WITH (TYPE=\"memory\") " + " " * 100_000}).encode()
    message = ("the request body is {size}, over the limit of 65536 bytes (max_body_bytes); every body of this API is "
               "a small JSON document (packages are given by URL): check what is being sent, or raise "
               "api.max_body_bytes in etc/plutino.yaml (PLUTINO_MAX_BODY_BYTES)")
    r = client.post("/streams", content=huge, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert _error(r) == message.format(size=f"{len(huge)} bytes")
    # sent in chunks, without a Content-Length: counted while it arrives
    chunks = iter([huge[:50_000], huge[50_000:]])
    r = client.post("/streams", content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert _error(r) == message.format(size="more than 65536 bytes")
    assert client.get("/streams").json() == []
    # a body under the limit goes through
    r = client.post("/streams", json={"sql": 'CREATE STREAM s () WITH (TYPE="memory", DATASOURCE="t")'})
    assert r.status_code == 201, r.text


def test_the_real_server_refuses_a_body_over_its_default_limit(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    try:
        r = server.post("/rules", content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                        headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert r.json()["message"].startswith("the request body is 2097154 bytes, over the limit of 1048576 bytes")
        assert server.get("/ping").status_code == 200
    finally:
        server.stop()
