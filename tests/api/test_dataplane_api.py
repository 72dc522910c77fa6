"""The data plane as the API shows it: rules run in workers, the server process loads no
plugin, a plugin update moves running rules to the new version, placement and memory topics."""

from __future__ import annotations

import os

import pyarrow as pa

from helpers import wait_for
from plutino.io.memory import BROKER

from .api_helpers import install


def _stream(client, name: str, topic: str) -> None:
    r = client.post("/streams", json={"sql": f'CREATE STREAM {name} () WITH (TYPE="memory", DATASOURCE="{topic}")'})
    assert r.status_code == 201, r.text


def _rule(client, rule_id: str, sql: str, topic: str, **options) -> None:
    body = {"id": rule_id, "sql": sql, "actions": [{"memory": {"topic": topic}}]}
    if options:
        body["options"] = options
    r = client.post("/rules", json=body)
    assert r.status_code == 201, r.text


def _mapped_files(pid: int | str = "self") -> str:
    with open(f"/proc/{pid}/maps") as f:
        return f.read()


def _worker_pid(client, rule_id: str) -> int | None:
    worker = client.get(f"/rules/{rule_id}/status").json().get("worker")  # "w1 (pid 123, pool)"
    return None if worker is None else int(worker.split("pid ")[1].split(",")[0])


def test_the_server_process_never_maps_a_plugin_while_its_rule_runs_in_a_worker(client, host, packages):
    install(client, packages, "echo")
    topic = f"in-{id(client)}"
    _stream(client, "s", topic)
    out = BROKER.subscribe(f"out-{id(client)}")
    _rule(client, "r1", "SELECT echo(a) AS e FROM s", out.topic)
    BROKER.publish(topic, pa.RecordBatch.from_pydict({"a": [5]}))
    assert wait_for(lambda: out.get(timeout=0.05), "the rule's output").to_pylist() == [{"e": 5}]
    so = str(host.data.root / host.store.get_plugin("function", "echo").file)
    assert so not in _mapped_files()
    pid = _worker_pid(client, "r1")
    assert pid != os.getpid() and so in _mapped_files(pid)
    out.close()


def test_a_plugin_update_moves_its_running_rule_to_the_new_version(client, host, packages, echo_v2):
    install(client, packages, "echo")
    topic = f"in-{id(client)}"
    _stream(client, "s", topic)
    out = BROKER.subscribe(f"out-{id(client)}")
    _rule(client, "r1", "SELECT echo(a) AS e FROM s", out.topic)
    assert client.get("/rules/r1/status").json()["pluginVersions"] == {"function/echo": "1.0.0"}

    r = client.put("/plugins/functions/echo", json={"name": "echo", "file": echo_v2.as_uri()})
    assert r.status_code == 200, r.text
    status = client.get("/rules/r1/status").json()
    assert status["status"] == "running"
    assert status["pluginVersions"] == {"function/echo": "1.1.0"}
    BROKER.publish(topic, pa.RecordBatch.from_pydict({"a": [7]}))
    assert wait_for(lambda: out.get(timeout=0.05), "the rule's output").to_pylist() == [{"e": 7}]
    out.close()


def test_a_dedicated_rule_gets_a_worker_of_its_own_and_memory_topics_join_it_to_the_pool(client):
    first, second = f"a-{id(client)}", f"b-{id(client)}"
    _stream(client, "s1", first)
    _stream(client, "s2", second)
    out = BROKER.subscribe(f"out-{id(client)}")
    # s1 -> dedicated rule -> topic second -> shared rule -> out: two processes, one pipeline
    _rule(client, "front", "SELECT a * 10 AS b FROM s1", second, isolation="dedicated")
    _rule(client, "back", "SELECT b + 1 AS c FROM s2", out.topic)
    front, back = client.get("/rules/front/status").json(), client.get("/rules/back/status").json()
    assert front["worker"].endswith("dedicated)") and not back["worker"].endswith("dedicated)")
    assert _worker_pid(client, "front") != _worker_pid(client, "back")
    BROKER.publish(first, pa.RecordBatch.from_pydict({"a": [1, 2]}))
    assert wait_for(lambda: out.get(timeout=0.05), "the pipeline's output").to_pylist() == [{"c": 11}, {"c": 21}]
    out.close()


def test_an_unknown_isolation_is_refused_with_the_choices(client):
    _stream(client, "s", "t")
    r = client.post("/rules", json={"id": "r", "sql": "SELECT * FROM s", "actions": [{"log": {}}],
                                    "options": {"isolation": "solo"}})
    assert r.status_code == 400
    assert r.json()["message"] == ("rule 'r': option isolation must be \"shared\" (a pool worker) or"
                                   " \"dedicated\" (a worker of its own), got 'solo'")


def test_a_killed_worker_is_replaced_and_its_rules_run_again(client):
    topic = f"in-{id(client)}"
    _stream(client, "s", topic)
    out = BROKER.subscribe(f"out-{id(client)}")
    _rule(client, "r1", "SELECT a FROM s", out.topic)
    old = _worker_pid(client, "r1")
    os.kill(old, 9)
    wait_for(lambda: _worker_pid(client, "r1") not in (old, None)
             and client.get("/rules/r1/status").json()["status"] == "running", "the rule on a new worker")
    status = client.get("/rules/r1/status").json()
    assert "lastCrash" not in status  # a kill from outside is no plugin's fault
    BROKER.publish(topic, pa.RecordBatch.from_pydict({"a": [3]}))
    assert wait_for(lambda: out.get(timeout=0.05), "the rule's output").to_pylist() == [{"a": 3}]
    out.close()


def test_an_update_refused_at_its_start_keeps_the_old_rule_running(client):
    topic = f"in-{id(client)}"
    _stream(client, "s", topic)
    out = BROKER.subscribe(f"out-{id(client)}")
    _rule(client, "r1", "SELECT a FROM s", out.topic)
    r = client.put("/rules/r1", json={"sql": "SELECT a FROM s", "actions": [{"memory": {"nope": 1}}]})
    assert r.status_code == 400
    assert "unknown property 'nope'" in r.json()["message"]
    assert client.get("/rules/r1").json()["actions"] == [{"memory": {"topic": out.topic}}]
    assert client.get("/rules/r1/status").json()["status"] == "running"
    BROKER.publish(topic, pa.RecordBatch.from_pydict({"a": [9]}))
    assert wait_for(lambda: out.get(timeout=0.05), "the old rule's output").to_pylist() == [{"a": 9}]
    out.close()
