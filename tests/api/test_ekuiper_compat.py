"""eKuiper's request shapes through a real server and a real mosquitto: the mqtt sink's
documented ``clientId``, options named in any case, ``sendError``, ``DELETE
/streams/{name}?force=true``, GROUP BY a SELECT alias, HAVING over a count window, a trailing
comma in CREATE STREAM, and a binary stream's bytea field."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from helpers import wait_for

from .api_helpers import ServerProcess, io_helpers, mqtt_server

iohelpers = io_helpers()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    b = iohelpers.Mosquitto(tmp_path_factory.mktemp("compat-broker"))
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, broker: Any) -> Iterator[ServerProcess]:
    proc = mqtt_server(tmp_path_factory.mktemp("compat") / "data", broker)
    yield proc
    proc.stop()


@pytest.fixture
def client(broker: Any) -> Iterator[Any]:
    c = iohelpers.MqttClient(broker)
    yield c
    c.close()


def topic() -> str:
    return f"compat/{uuid.uuid4().hex[:10]}"


def create_stream(server: ServerProcess, sql: str) -> None:
    r = server.post("/streams", json={"sql": sql})
    assert r.status_code == 201, r.text


def create_rule(server: ServerProcess, rule: dict[str, Any]) -> None:
    r = server.post("/rules", json=rule)
    assert r.status_code == 201, r.text
    source = next(k for k in server.get(f"/rules/{rule['id']}/status").json() if k.endswith("_connection_status"))
    wait_for(lambda: server.get(f"/rules/{rule['id']}/status").json()[source] in (1, "connected"),
             f"rule {rule['id']}'s source to subscribe")


def rows_of(client: Any, out: str, count: int) -> list[dict[str, Any]]:
    """The rows of the JSON messages on ``out``, once there are ``count`` of them."""
    def rows() -> list[dict[str, Any]]:
        got = [json.loads(p) for p in client.payloads(out)]
        return [r for m in got for r in (m if isinstance(m, list) else [m])]
    wait_for(lambda: len(rows()) >= count, f"{count} rows on {out}")
    return rows()


def test_the_mqtt_sink_takes_ekuiper_spellings_and_send_error(server, broker, client):
    src, out = topic(), topic()
    create_stream(server, f'CREATE STREAM ev (id BIGINT, d BIGINT,) WITH (DATASOURCE="{src}", FORMAT="json")')
    client.subscribe(out)
    # the body of eKuiper's rules guide, with options in other cases than eKuiper's
    create_rule(server, {"id": "ek_mqtt", "sql": "SELECT id / d AS q FROM ev", "actions": [{"mqtt": {
        "server": broker.url, "topic": out, "qos": 1, "clientId": "demo_001", "retained": False,
        "SendSingle": True}}], "options": {"SENDERROR": True, "qos": 0}})
    client.publish(src, [json.dumps({"id": 6, "d": 3}).encode(), b'{"id": 1, "d": 0}'])
    got = rows_of(client, out, 2)
    # one row each, in either order: the two messages may come as one batch, whose bad row is
    # found (and its error sent) before the good rows leave the operators
    assert [r for r in got if "error" not in r] == [{"q": 2}]
    (error,) = [r for r in got if "error" in r]
    assert list(error) == ["error"] and "divide by zero" in error["error"]
    assert server.get("/rules/ek_mqtt").json()["actions"][0]["mqtt"]["clientId"] == "demo_001"

    typo = {"id": "ek_typo", "sql": "SELECT * FROM ev",
            "actions": [{"mqtt": {"server": broker.url, "topic": out, "clientIdd": "x"}}]}
    r = server.post("/rules", json=typo)
    assert r.status_code == 400
    assert "unknown property 'clientIdd'; did you mean 'clientid'?" in r.json()["message"]
    r = server.post("/rules", json={**typo, "id": "ek_qos", "actions": [{"log": {}}], "options": {"qos": 2}})
    assert r.status_code == 400 and "option qos=2 asks for eKuiper behaviour" in r.json()["message"]


def test_group_by_an_alias_and_having_over_a_count_window(server, broker, client):
    src, grouped, schemaless, having = topic(), topic(), topic(), topic()
    create_stream(server, f'CREATE STREAM gs (id BIGINT) WITH (DATASOURCE="{src}")')
    create_stream(server, f'CREATE STREAM gl () WITH (DATASOURCE="{src}")')
    for out in (grouped, schemaless, having):
        client.subscribe(out)
    sql = "SELECT id % 4 AS k, count(*) AS n FROM {} GROUP BY k, COUNTWINDOW(8)"
    create_rule(server, {"id": "ek_gs", "sql": sql.format("gs"),
                         "actions": [{"mqtt": {"server": broker.url, "topic": grouped}}]})
    create_rule(server, {"id": "ek_gl", "sql": sql.format("gl"),
                         "actions": [{"mqtt": {"server": broker.url, "topic": schemaless}}]})
    create_rule(server, {"id": "ek_hv", "sql": "SELECT * FROM gs GROUP BY COUNTWINDOW(4) HAVING max(id) > 4",
                         "actions": [{"mqtt": {"server": broker.url, "topic": having}}]})
    client.publish(src, [json.dumps({"id": i}).encode() for i in range(8)])
    for out in (grouped, schemaless):
        assert sorted(rows_of(client, out, 4), key=lambda r: r["k"]) == [{"k": k, "n": 2} for k in range(4)]
    assert rows_of(client, having, 4) == [{"id": i} for i in (4, 5, 6, 7)]


def test_a_binary_stream_puts_the_payload_in_its_bytea_field(server, broker, client):
    src, out = topic(), topic()
    create_stream(server, f'CREATE STREAM demoBin (image BYTEA) WITH (DATASOURCE="{src}", FORMAT="BINARY")')
    client.subscribe(out)
    create_rule(server, {"id": "ek_bin", "sql": "SELECT image FROM demoBin",
                         "actions": [{"mqtt": {"server": broker.url, "topic": out}}]})
    client.publish(src, [b"\x89PNG\x00\x01"])
    assert rows_of(client, out, 1) == [{"image": base64.b64encode(b"\x89PNG\x00\x01").decode()}]
    r = server.post("/streams", json={"sql": 'CREATE STREAM bad (image BYTEA, n BIGINT) WITH (FORMAT="binary")'})
    assert r.status_code == 400 and "declare one bytea field" in r.json()["message"]


def test_delete_stream_with_force_drops_it_under_its_rules(server):
    create_stream(server, 'CREATE STREAM fs () WITH (TYPE="memory", DATASOURCE="compat_force")')
    r = server.post("/rules", json={"id": "ek_force", "sql": "SELECT * FROM fs", "actions": [{"log": {}}]})
    assert r.status_code == 201, r.text
    r = server.delete("/streams/fs")
    assert r.status_code == 400 and "DELETE /streams/fs?force=true" in r.json()["message"]
    r = server.delete("/streams/fs", params={"force": "true"})
    assert (r.status_code, r.text) == (200, "Stream fs is dropped.")
    assert "fs" not in server.get("/streams").json()
    assert server.get("/rules/ek_force/status").json()["status"] == "running"  # eKuiper leaves the rules alone
    assert server.post("/rules/ek_force/restart").status_code == 400  # it cannot start without its stream
