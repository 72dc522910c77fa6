"""eKuiper's tables through a real server and a real mosquitto: the /tables API in eKuiper's
shapes, a stream joined with a lookup table that a memory sink keeps up to date (inserts,
updates, deletes), and two streams joined within a tumbling window."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from helpers import wait_for

from .api_helpers import ServerProcess, mqtt_server
from .test_ekuiper_compat import broker, client, create_rule, create_stream, rows_of, topic

__all__ = ["broker", "client"]  # fixtures shared with the compatibility tests


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, broker: Any) -> Iterator[ServerProcess]:
    proc = mqtt_server(tmp_path_factory.mktemp("tables") / "data", broker)
    yield proc
    proc.stop()


def test_the_tables_api_answers_as_ekuipers(server: ServerProcess):
    sql = 'CREATE TABLE dim (id BIGINT, name STRING) WITH (DATASOURCE="dim_t", TYPE="memory", KIND="lookup", KEY="id")'
    r = server.post("/tables", json={"sql": sql})
    assert (r.status_code, r.text) == (201, "Table dim is created.")
    r = server.post("/tables", json={"sql": 'CREATE TABLE scan1 (id BIGINT) WITH (DATASOURCE="s1", TYPE="memory")'})
    assert r.status_code == 201
    assert server.get("/tables").json() == ["dim", "scan1"]
    assert server.get("/tables?kind=lookup").json() == ["dim"]
    assert server.get("/streams").json() == []
    described = server.get("/tables/dim").json()
    assert described["Name"] == "dim" and described["Options"]["kind"] == "lookup"
    assert described["StreamFields"] == [{"Name": "id", "FieldType": "bigint"}, {"Name": "name", "FieldType": "string"}]
    r = server.put("/tables/scan1", json={"sql": 'CREATE TABLE scan1 (id BIGINT, v FLOAT) WITH (DATASOURCE="s1", '
                                                 'TYPE="memory", RETAIN_SIZE="10")'})
    assert (r.status_code, r.text) == (200, "Table scan1 is updated.")
    r = server.post("/tables", json={"sql": 'CREATE STREAM nope () WITH (DATASOURCE="x")'})
    assert r.status_code == 400 and r.json()["message"] == ("POST /tables takes CREATE TABLE; create a stream with "
                                                            "POST /streams")
    r = server.get("/streams/dim")
    assert r.status_code == 404 and r.json()["message"] == ("stream 'dim' not found (dim is a table); existing "
                                                            "streams: none")
    exported = server.get("/data/export").json()
    assert exported["tables"]["dim"] == sql and exported["streams"] == {}
    assert server.delete("/tables/scan1").text == "Table scan1 is dropped."
    r = server.get("/tables?kind=hash")
    assert r.status_code == 400
    assert r.json()["message"] == "kind='hash' is not a table kind; use kind=scan or kind=lookup"
    r = server.delete("/tables/nope")
    assert r.status_code == 404 and r.json()["message"] == "table 'nope' not found; existing tables: dim"
    r = server.post("/tables", json={"sql": "CREATE TABLE broken (id BIGINT WITH (TYPE=\"memory\")"})
    assert r.status_code == 400 and "expected ',' or ')' after field 'id'" in r.json()["message"]


def test_a_stream_joins_a_lookup_table_a_memory_sink_keeps_up_to_date(server: ServerProcess, broker, client):
    updates, events, out = topic(), topic(), topic()
    create_stream(server,
                  f'CREATE STREAM custupd (id BIGINT, name STRING, action STRING) WITH (DATASOURCE="{updates}")')
    create_stream(server, f'CREATE STREAM orders (id BIGINT, cust BIGINT) WITH (DATASOURCE="{events}")')
    r = server.post("/tables", json={"sql": 'CREATE TABLE customers (id BIGINT, name STRING) WITH (TYPE="memory", '
                                            'DATASOURCE="customers_t", KIND="lookup", KEY="id")'})
    assert r.status_code == 201, r.text
    create_rule(server, {"id": "cust_writer", "sql": "SELECT * FROM custupd", "actions": [{"memory": {
        "topic": "customers_t", "rowkindField": "action", "keyField": "id"}}]})
    client.subscribe(out)
    create_rule(server, {"id": "enrich", "sql": "SELECT orders.id, customers.name FROM orders LEFT JOIN customers "
                                                "ON orders.cust = customers.id",
                         "actions": [{"mqtt": {"server": broker.url, "topic": out, "sendSingle": True}}]})
    status = lambda: server.get("/rules/enrich/status").json()  # noqa: E731
    wait_for(lambda: status()["source_customers_0_connection_status"] == 1, "the lookup table's source")
    client.publish(updates, [json.dumps(r).encode() for r in (
        {"id": 1, "name": "ann", "action": "insert"}, {"id": 2, "name": "bob", "action": "insert"})])
    wait_for(lambda: status()["source_customers_0_records_out_total"] == 2, "the table's rows")
    client.publish(updates, [json.dumps(r).encode() for r in (
        {"id": 1, "action": "delete"}, {"id": 2, "name": "bo", "action": "update"})])
    wait_for(lambda: status()["source_customers_0_records_out_total"] == 4, "the table's delete and update")
    client.publish(events, [json.dumps(r).encode() for r in ({"id": 10, "cust": 1}, {"id": 11, "cust": 2})])
    assert sorted(rows_of(client, out, 2), key=lambda r: r["id"]) == [
        {"id": 10, "name": None}, {"id": 11, "name": "bo"}]
    r = server.delete("/tables/customers")
    assert r.status_code == 400 and "table 'customers' is used by rule(s) enrich" in r.json()["message"]


def test_two_streams_join_within_a_tumbling_window(server: ServerProcess, broker, client):
    temps, hums, out = topic(), topic(), topic()
    create_stream(server, f'CREATE STREAM temps (room STRING, t FLOAT) WITH (DATASOURCE="{temps}")')
    create_stream(server, f'CREATE STREAM hums (room STRING, h FLOAT) WITH (DATASOURCE="{hums}")')
    client.subscribe(out)
    create_rule(server, {"id": "ss_join", "sql": "SELECT temps.room, t, h FROM temps INNER JOIN hums ON "
                                                 "temps.room = hums.room GROUP BY TUMBLINGWINDOW(ss, 1)",
                         "actions": [{"mqtt": {"server": broker.url, "topic": out, "sendSingle": True}}]})
    wait_for(lambda: server.get("/rules/ss_join/status").json()["source_hums_0_connection_status"] == 1,
             "the second stream's source")
    for _ in range(5):  # a pair published across a window's end does not join: publish again
        client.publish(temps, [json.dumps({"room": "a", "t": 20.5}).encode(),
                               json.dumps({"room": "b", "t": 19}).encode()])
        client.publish(hums, [json.dumps({"room": "a", "h": 40}).encode()])
        try:
            wait_for(lambda: client.payloads(out), "a joined row", timeout=5)
            break
        except AssertionError:
            continue
    got = rows_of(client, out, 1)
    assert got[0] == {"room": "a", "t": 20.5, "h": 40.0} and all(r == got[0] for r in got)


def test_a_join_rules_topology_in_ekuipers_shape(server: ServerProcess, broker):
    create_stream(server, f'CREATE STREAM tp_s (id BIGINT) WITH (DATASOURCE="{topic()}")')
    r = server.post("/tables", json={"sql": 'CREATE TABLE tp_t (id BIGINT) WITH (TYPE="memory", DATASOURCE="tp_t", '
                                            'KEY="id")'})
    assert r.status_code == 201, r.text
    create_rule(server, {"id": "tp", "sql": "SELECT * FROM tp_s LEFT JOIN tp_t ON tp_s.id = tp_t.id",
                         "actions": [{"mqtt": {"server": broker.url, "topic": topic()}}]})
    assert server.get("/rules/tp/topo").json() == {
        "sources": ["source_tp_s", "source_tp_t"],
        "edges": {"source_tp_s": ["op_1_join"], "source_tp_t": ["op_1_join"], "op_1_join": ["op_2_project"],
                  "op_2_project": ["sink_mqtt_0"]}}
