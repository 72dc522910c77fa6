"""Bad input over real HTTP (issue 16): every case is a 4xx with its exact message, never a
5xx, a crash or a blocked API.

One server for the module, started on a data dir whose store has a damaged rule row among
good ones (written with the real Store, then damaged with sqlite3 as a disk or a hand would):
it must start, run the others, and show the damaged rule with its reason.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import statistics
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from helpers import wait_for
from plutino.store import Store

from .api_helpers import ServerProcess

DEMO = 'CREATE STREAM demo () WITH (TYPE="memory", DATASOURCE="t/demo")'
NOT_JSON = ("the store's row rules/r2 is damaged: its body is not valid JSON (Expecting property name enclosed in"
            " double quotes: line 1 column 2 (char 1))")
NOT_AN_OBJECT = "the store's row rules/r4 is damaged: its body is a JSON list, not an object"


def _rule(rule_id: str) -> dict:
    return {"id": rule_id, "sql": "SELECT * FROM demo", "actions": [{"log": {}}]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("bad-input")
    data = root / "data"
    data.mkdir()
    store = Store(data / "store.db")
    store.put_entry("streams", "demo", {"name": "demo", "sql": DEMO})
    for rule_id in ("r1", "r2", "r3", "r4"):
        store.put_entry("rules", rule_id, _rule(rule_id), "running")
    store.close()
    db = sqlite3.connect(data / "store.db")
    db.execute("UPDATE rules SET body = '{not json' WHERE id = 'r2'")
    db.execute("UPDATE rules SET body = '[1, 2]' WHERE id = 'r4'")
    db.commit()
    db.close()
    packages = root / "packages"
    packages.mkdir()
    server = ServerProcess(data, env={"PLUTINO_ALLOWED_FILE_DIRS": str(packages)}).start()
    server.packages = packages  # type: ignore[attr-defined]
    yield server
    code = server.stop()
    assert code == 0
    assert "Traceback" not in server.output()
    assert "this is a bug in Plutino" not in server.output()


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()


# ---------------------------------------------------------------- a damaged store row


def test_a_damaged_rule_row_is_skipped_at_start_and_the_others_run(server):
    wait_for(lambda: {r["id"]: r["status"] for r in server.get("/rules").json()}.get("r3") == "running",
             "r1 and r3 to run")
    listed = {r["id"]: r for r in server.get("/rules").json()}
    assert listed["r1"]["status"] == listed["r3"]["status"] == "running"
    fix = "replace it with PUT /rules/r2 or delete it with DELETE /rules/r2"
    assert listed["r2"] == {"id": "r2", "name": "r2", "status": "stopped", "message": f"{NOT_JSON}; {fix}"}
    status = server.get("/rules/r2/status").json()
    assert status["status"] == "stopped" and status["message"] == f"{NOT_JSON}; {fix}"
    assert _error(server.get("/rules/r2"), 400) == {
        "error": 1000, "type": "UnrestoredRule",
        "message": f"cannot describe rule 'r2': it could not be restored at start-up ({NOT_JSON}); {fix}"}
    assert _error(server.post("/rules/r2/start"), 400)["message"].startswith("cannot start rule 'r2': it could not")
    assert _error(server.post("/rules", json=_rule("r2")), 400)["message"].startswith("cannot create rule 'r2'")
    assert (f"rule r2 could not be restored and is not started: {NOT_JSON}; {fix}") in server.output()
    # a good definition replaces the damaged row, and runs
    r = server.put("/rules/r2", json=_rule("r2"))
    assert (r.status_code, r.text) == (200, "Rule r2 was updated successfully.")
    assert server.get("/rules/r2").json() == _rule("r2")
    wait_for(lambda: server.get("/rules/r2/status").json()["status"] == "running", "r2 to run")


def test_a_damaged_rule_row_can_be_deleted(server):
    listed = {r["id"]: r for r in server.get("/rules").json()}
    assert listed["r4"]["message"].startswith(NOT_AN_OBJECT + "; replace it with PUT /rules/r4")
    r = server.delete("/rules/r4")
    assert (r.status_code, r.text) == (200, "Rule r4 is dropped.")
    assert "r4" not in {r["id"] for r in server.get("/rules").json()}
    assert _error(server.get("/rules/r4/status"), 404)["message"].startswith("rule 'r4' not found")


# ---------------------------------------------------------------- names


def test_a_rule_id_with_a_trailing_newline_is_refused(server):
    assert _error(server.post("/rules", json=_rule("rr\n")), 400) == {
        "error": 1000, "type": "RuleError",
        "message": "rule id 'rr\\n' is not valid: use 1 to 128 letters, digits, '-' or '_'"}


@pytest.mark.parametrize("name", ["a/b", "..", "a b", "x" * 129])
def test_a_stream_name_that_cannot_be_addressed_over_rest_is_refused(server, name):
    sql = f'CREATE STREAM `{name}` () WITH (TYPE="memory", DATASOURCE="t/x")'
    assert _error(server.post("/streams", json={"sql": sql}), 400) == {
        "error": 2001, "type": "SqlError", "line": 1, "col": 15,
        "message": f"stream name {name!r} is not valid: use 1 to 128 letters, digits, '-' or '_' (quote a name with"
                   " '-' in backticks) at line 1, col 15"}


def test_a_quoted_stream_name_with_a_dash_is_created_and_deleted_over_rest(server):
    sql = 'CREATE STREAM `my-stream` () WITH (TYPE="memory", DATASOURCE="t/x")'
    assert server.post("/streams", json={"sql": sql}).status_code == 201
    r = server.delete("/streams/my-stream")
    assert (r.status_code, r.text) == (200, "Stream my-stream is dropped.")


def test_a_conf_key_name_that_cannot_be_addressed_is_refused(server):
    r = server.put("/metadata/sources/simulator/confKeys/a.b", json={"interval": 10})
    assert _error(r, 400)["message"] == (
        "source 'simulator': conf key 'a.b' is not valid: use 1 to 128 letters, digits, '-' or '_'")


# ---------------------------------------------------------------- limits


def _nested(depth: int) -> str:
    return "SELECT " + "(" * depth + "a" + ")" * depth + " AS x FROM demo"


def test_5000_nested_brackets_are_a_fast_400_naming_the_limit(server):
    started = time.monotonic()
    body = _error(server.post("/rules", json={**_rule("deep"), "sql": _nested(5000)}), 400)
    assert time.monotonic() - started < 1.0
    assert body == {"error": 2001, "type": "SqlError", "line": 1, "col": 32,
                    "message": "the SQL nests brackets deeper than the limit of 24 levels at line 1, col 32;"
                               " simplify the expression: fewer brackets or nested calls"}
    r = server.post("/query", json={"sql": _nested(5000), "timeout": 1})
    assert _error(r, 400)["message"].startswith("the SQL nests brackets deeper than the limit of 24 levels")
    deep_type = 'CREATE STREAM t (a ' + "ARRAY(" * 30 + "BIGINT" + ")" * 30 + ') WITH (TYPE="memory")'
    r = server.post("/streams", json={"sql": deep_type})
    assert _error(r, 400)["message"].startswith("the SQL nests brackets deeper than the limit of 24 levels")


def test_brackets_at_the_limit_plan_and_run_in_a_worker(server):
    sql = "SELECT " + "abs(" * 24 + "a" + ")" * 24 + " AS x FROM demo"
    r = server.post("/rules/validate", json={**_rule("at-limit"), "sql": sql})
    assert (r.status_code, r.json()) == (200, {"valid": True})


def test_a_deep_chain_without_brackets_is_a_400(server):
    r = server.post("/rules", json={**_rule("nots"), "sql": "SELECT " + "NOT " * 5000 + "true AS x FROM demo"})
    assert _error(r, 400) == {
        "error": 2001, "type": "SqlError",
        "message": "the SQL is nested too deeply to plan (a long chain of AND, OR or operators, or of NOT); use IN"
                   " (...) for a long chain of OR, or split the expression; brackets may nest up to 24 levels"}


def test_sql_over_the_size_limit_is_a_400(server):
    sql = "SELECT a FROM demo WHERE a = '" + "x" * 100_000 + "'"
    assert _error(server.post("/rules", json={**_rule("long"), "sql": sql}), 400)["message"] == (
        f"the SQL is {len(sql)} characters long, over the limit of 100000; shorten the statement, e.g. split it"
        " into several rules")


def test_a_deeply_nested_json_body_is_a_400(server):
    body = '{"id": "j", "sql": "SELECT * FROM demo", "actions": [{"log": {"x": ' + "[" * 5000 + "]" * 5000 + "}}]}"
    at = body.index("[[") + 60  # the 65th bracket: 4 open before the run of '['
    r = server.post("/rules", content=body, headers={"content-type": "application/json"})
    assert _error(r, 400) == {
        "error": 1000, "type": "BadRequest",
        "message": "the request body is not valid JSON (it nests deeper than 64 levels of objects and arrays,"
                   f" Plutino's limit; flatten the document: line 1 column {at + 1} (char {at})); see the request"
                   " shapes in /docs"}


def test_a_deeply_nested_plugin_manifest_is_a_400(server):
    package = server.packages / "deep.zip"
    with zipfile.ZipFile(package, "w") as z:
        z.writestr("deep.so", b"\x7fELF not really")
        z.writestr("plutino.json", "[" * 5000 + "]" * 5000)
    r = server.post("/plugins/functions", json={"name": "deep", "file": package.as_uri()})
    assert _error(r, 400)["message"] == (
        "package deep.zip: plutino.json is not valid JSON (it nests deeper than 64 levels of objects and arrays,"
        " Plutino's limit; flatten the document: line 1 column 65 (char 64)); re-create the package with"
        " `plutino plugin pack`")


@pytest.mark.parametrize("options, actions, message", [
    ({"drainTimeout": 10**30}, [{"log": {}}],
     "rule 'bounds': drainTimeout must be a whole number from 0 to 300000 (ms), got 1000000000000000000000000000000"),
    ({"bufferLength": 0}, [{"log": {}}], "rule 'bounds': bufferLength must be a whole number from 1 to 100000"
                                         " (batches), got 0"),
    ({"lateTolerance": -1}, [{"log": {}}], "rule 'bounds': lateTolerance must be a whole number from 0 to 86400000"
                                           " (ms), got -1"),
    ({}, [{"log": {"retryInterval": 10**30}}],
     "rule 'bounds': log.retryInterval must be a whole number from 0 to 3600000 (ms), got"
     " 1000000000000000000000000000000"),
    ({}, [{"rest": {"url": "http://127.0.0.1:9/x", "timeout": 10**30}}],
     "rule 'bounds': sink 'rest' (action 0) refused its configuration: rest sink: property 'timeout' must be a"
     " whole number between 1 and 2147483647, got 1000000000000000000000000000000; e.g. {\"rest\": {\"url\":"
     " \"http://127.0.0.1:8080/ingest\", \"method\": \"POST\"}}"),
])
def test_numeric_options_outside_their_bounds_are_refused(server, options, actions, message):
    r = server.post("/rules", json={**_rule("bounds"), "actions": actions, "options": options})
    assert _error(r, 400)["message"] == message


# ---------------------------------------------------------------- nothing blocks the API


def test_ping_and_reads_answer_while_50_queries_run_and_rules_drain(server):
    hole = socket.socket()  # accepts connections and never answers: a rest sink's write hangs
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)
    server.put("/metadata/sources/simulator/confKeys/ticks", json={"interval": 10, "data": [{"a": 1}]})
    assert server.post("/streams", json={"sql": 'CREATE STREAM ticks () WITH (TYPE="simulator", CONF_KEY="ticks")'}
                       ).status_code == 201
    url = f"http://127.0.0.1:{hole.getsockname()[1]}/in"
    for i in range(3):
        r = server.post("/rules", json={"id": f"slow{i}", "sql": "SELECT a FROM ticks",
                                        "actions": [{"rest": {"url": url, "timeout": 4000}}],
                                        "options": {"drainTimeout": 2000}})
        assert r.status_code == 201, r.text
    time.sleep(0.5)  # their writes are in flight, so each DELETE drains

    answers: list[httpx.Response] = []

    def call(method: str, path: str, **kwargs) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            answers.append(client.request(method, path, **kwargs))

    slow = [threading.Thread(target=call, args=("POST", "/query"), kwargs={"json": {"sql": "SELECT * FROM demo",
                                                                                    "timeout": 6}})
            for _ in range(50)]
    slow += [threading.Thread(target=call, args=("DELETE", f"/rules/slow{i}")) for i in range(3)]
    started = time.monotonic()
    for thread in slow:
        thread.start()
    latencies: dict[str, list[float]] = {"/ping": [], "/rules": [], "/streams": [], "/rules/r1": []}
    while time.monotonic() - started < 4.5:
        for path, seen in latencies.items():
            before = time.monotonic()
            assert server.get(path).status_code == 200
            seen.append(time.monotonic() - before)
        time.sleep(0.05)
    for thread in slow:
        thread.join(30)
    hole.close()
    # generous for a loaded 2-core machine; measured: median 2 ms, max about 150 ms (docs/rest.md)
    worst = {path: max(seen) for path, seen in latencies.items()}
    assert all(w < 1.0 for w in worst.values()), worst
    assert statistics.median(latencies["/ping"]) < 0.1
    codes = Counter((a.request.method, a.status_code) for a in answers)
    assert codes[("DELETE", 200)] == 3, codes
    assert codes[("POST", 200)] >= 16 and codes[("POST", 200)] + codes[("POST", 503)] == 50, codes
    busy = [a for a in answers if a.status_code == 503]
    assert busy, "16 queries run at once: the others wait 5 s for a slot, then are answered 503"
    assert busy[0].headers["retry-after"] == "5"
    assert busy[0].json() == {
        "error": 1000, "type": "Busy",
        "message": "the server is busy: 16 queries (POST /query) are running, the most it runs at once, and none"
                   " finished within 5 s; retry in 5 s (Retry-After)"}


def test_the_server_is_still_well(server):
    assert server.get("/ping").status_code == 200
    assert json.loads(server.get("/rules").text)
