"""eKuiper's conf key API and its data import and export, through real servers and a real
mosquitto: a broker's address set over REST reaches a stream (CONF_KEY) and a rule's sink; bad
keys are refused with the fix; secrets are masked. Then the server is exported and imported
into a fresh one (``?stop=1``: it exits, and is started again), whose rules run as before."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import wait_for

from .api_helpers import ServerProcess, io_helpers

iohelpers = io_helpers()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    b = iohelpers.Mosquitto(tmp_path_factory.mktemp("data-broker"))
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def client(broker: Any) -> Iterator[Any]:
    c = iohelpers.MqttClient(broker)
    yield c
    c.close()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ekuiper-data")


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[ServerProcess]:
    """A server with no mqtt.yaml: the broker is known only from the conf keys set below."""
    (workdir / "a").mkdir()
    proc = ServerProcess(workdir / "a" / "data").start()
    yield proc
    proc.stop()


def topic() -> str:
    return f"data/{uuid.uuid4().hex[:10]}"


def wait_connected(server: ServerProcess, rule_id: str) -> None:
    def connected() -> bool:
        status = server.get(f"/rules/{rule_id}/status").json()
        keys = [k for k in status if k.startswith("source_") and k.endswith("_connection_status")]
        return bool(keys) and all(status[k] in (1, "connected") for k in keys)
    wait_for(connected, f"rule {rule_id} to connect")


def payloads(client: Any, out: str, count: int) -> list[Any]:
    wait_for(lambda: len(client.payloads(out)) >= count, f"{count} messages on {out}")
    return [json.loads(p) for p in client.payloads(out)]


SRC, OUT = topic(), topic()


def test_conf_keys_set_over_rest_reach_a_stream_and_a_sink(server, broker, client):
    # eKuiper's documented body: the settings wrapped in the key's name
    r = server.put("/metadata/sources/mqtt/confKeys/demo_conf", json={"demo_conf": {"qos": 1, "Server": broker.url}})
    assert (r.status_code, r.text) == (200, "")
    # and the settings alone (what eKuiper's server reads); names in any case, stored in the plugin's
    r = server.put("/metadata/sinks/mqtt/confKeys/default", json={"SERVER": broker.url, "qos": 1})
    assert r.status_code == 200, r.text
    assert server.get("/metadata/sources/yaml/mqtt").json() == {"demo_conf": {"qos": 1, "server": broker.url}}
    assert server.get("/metadata/sources/mqtt/confKeys").json() == ["demo_conf"]
    assert server.get("/metadata/sinks/mqtt/confKeys/default").json() == {"server": broker.url, "qos": 1}

    r = server.post("/streams", json={"sql": f'CREATE STREAM ck () WITH (DATASOURCE="{SRC}", CONF_KEY="demo_conf")'})
    assert r.status_code == 201, r.text
    client.subscribe(OUT)
    r = server.post("/rules", json={"id": "ck_run", "sql": "SELECT a * 2 AS b FROM ck",
                                    "actions": [{"mqtt": {"topic": OUT, "sendSingle": True}}]})
    assert r.status_code == 201, r.text
    r = server.post("/rules", json={"id": "ck_idle", "sql": "SELECT a FROM ck", "triggered": False,
                                    "actions": [{"log": {}}]})
    assert r.status_code == 201, r.text
    wait_connected(server, "ck_run")
    client.publish(SRC, [b'{"a": 1}', b'{"a": 2}'])
    assert payloads(client, OUT, 2) == [{"b": 2}, {"b": 4}]


def test_bad_keys_are_refused_with_the_fix_and_secrets_are_masked(server, workdir):
    r = server.put("/metadata/sources/mqtt/confKeys/typo", json={"servr": "tcp://127.0.0.1:1883"})
    assert r.status_code == 400
    assert "unknown property 'servr'; did you mean 'server'?" in r.json()["message"]
    r = server.put("/metadata/sources/mqtts/confKeys/x", json={"server": "tcp://127.0.0.1:1883"})
    assert r.status_code == 404 and "source type 'mqtts' not found" in r.json()["message"]
    assert "typo" not in server.get("/metadata/sources/yaml/mqtt").json()

    secured = {"server": "tcp://127.0.0.1:1", "username": "u", "password": "s3cret"}
    assert server.put("/metadata/sources/mqtt/confKeys/secured", json=secured).status_code == 200
    shown = server.get("/metadata/sources/mqtt/confKeys/secured").json()
    assert shown == {**secured, "password": "******"}
    assert server.get("/metadata/sources/yaml/mqtt").json()["secured"]["password"] == "******"
    # what a UI sends back after showing it: the masked secret keeps the stored one
    assert server.put("/metadata/sources/mqtt/confKeys/secured", json={**shown, "username": "v"}).status_code == 200
    stored = (workdir / "a" / "data" / "etc" / "sources" / "mqtt.yaml").read_text()
    assert "s3cret" in stored and "username: v" in stored

    assert server.delete("/metadata/sources/mqtt/confKeys/secured").status_code == 200
    r = server.get("/metadata/sources/mqtt/confKeys/secured")
    assert r.status_code == 404 and "the conf keys of source 'mqtt': demo_conf" in r.json()["message"]
    assert server.delete("/metadata/sources/mqtt/confKeys/secured").status_code == 404


def test_export_then_import_into_a_fresh_server_after_its_restart(server, broker, client, workdir):
    r = server.get("/data/export")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    doc = r.json()
    assert set(doc["streams"]) == {"ck"} and set(doc["rules"]) == {"ck_run", "ck_idle"}
    assert json.loads(doc["rules"]["ck_run"])["triggered"] is True
    assert json.loads(doc["rules"]["ck_idle"])["triggered"] is False
    assert json.loads(doc["sourceConfig"]["mqtt"]) == {"demo_conf": {"qos": 1, "server": broker.url}}
    ruleset = server.get("/ruleset/export").json()
    assert set(ruleset) == {"streams", "tables", "rules"} and ruleset["rules"] == doc["rules"]
    assert server.post("/rules/ck_run/stop").status_code == 200  # only the imported copy writes to OUT now

    (workdir / "b").mkdir()
    export = workdir / "b" / "export.json"
    export.write_text(json.dumps(doc))
    fresh = ServerProcess(workdir / "b" / "data").start()
    try:
        r = fresh.post("/data/import?stop=1", json={"file": export.as_uri()})
        assert r.status_code == 200, r.text
        assert r.json() == {"ErrorMsg": "", "ConfigResponse": {s: {} for s in (
            "streams", "tables", "rules", "nativePlugins", "portablePlugins", "sourceConfig", "sinkConfig",
            "connectionConfig", "Service", "Schema", "uploads", "scripts")}}
        wait_for(lambda: fresh.proc.poll() is not None, "the server to exit after ?stop=1")
        assert fresh.stop() == 0
        fresh = ServerProcess(workdir / "b" / "data").start()

        assert fresh.get("/streams").json() == ["ck"]
        assert fresh.get("/metadata/sources/yaml/mqtt").json() == {"demo_conf": {"qos": 1, "server": broker.url}}
        assert fresh.get("/metadata/sinks/mqtt/confKeys/default").json() == {"server": broker.url, "qos": 1}
        assert fresh.get("/rules/ck_idle/status").json()["status"] == "stopped"
        wait_connected(fresh, "ck_run")
        before = len(client.payloads(OUT))
        client.publish(SRC, [b'{"a": 5}'])
        assert payloads(client, OUT, before + 1)[before:] == [{"b": 10}]

        # a partial import: each item all or nothing, the failed one named
        bad = {"streams": {"ck2": f'CREATE STREAM ck2 () WITH (DATASOURCE="{SRC}", CONF_KEY="demo_conf")'},
               "rules": {"good": json.dumps({"id": "good", "sql": "SELECT * FROM ck2", "actions": [{"log": {}}]}),
                         "bad": json.dumps({"id": "bad", "sql": "SELECT * FROM nosuch", "actions": [{"log": {}}]})},
               "sinkConfig": {"log": json.dumps({"default": {"levle": "info"}})}}
        r = fresh.post("/data/import", params={"partial": "1"}, json={"content": json.dumps(bad)})
        assert r.status_code == 400
        body = r.json()
        assert "rules 'bad': unknown stream 'nosuch'" in body["message"]
        assert "did you mean 'level'?" in body["ConfigResponse"]["sinkConfig"]["log"]
        assert fresh.get("/data/import/status").json() == body["ConfigResponse"]
        assert sorted(fresh.get("/streams").json()) == ["ck", "ck2"]
        assert sorted(r["id"] for r in fresh.get("/rules").json()) == ["ck_idle", "ck_run", "good"]

        # the older ruleset API: only what does not exist yet is created
        r = fresh.post("/ruleset/import", json={"content": json.dumps(ruleset)})
        assert (r.status_code, r.text) == (200, "imported 0 streams, 0 tables and 0 rules")
    finally:
        fresh.stop()
