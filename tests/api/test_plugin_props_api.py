"""A native plugin's own properties through the REST API: a source's in CREATE STREAM ... WITH,
a sink's in a rule action; checked against the plugin's installed metadata (random.json,
file.json) with a 400 at create time, and reaching the plugin when they are right."""

from __future__ import annotations

import json

from .api_helpers import install


def test_a_sources_properties_in_with_reach_the_native_plugin(client, packages):
    install(client, packages, "random")
    sql = 'CREATE STREAM demo () WITH (TYPE="random", CONF_KEY="ext", COUNT="4", Batch_Size=2, SEED="3", INTERVAL="0")'
    r = client.post("/streams", json={"sql": sql})
    assert (r.status_code, r.text) == (201, "Stream demo is created.")
    assert client.get("/streams/demo").json()["Options"]["COUNT"] == "4"
    r = client.post("/query", json={"sql": "SELECT count FROM demo", "limit": 100, "timeout": 20})
    assert r.status_code == 200, r.text
    assert len(r.json()["rows"]) == 4  # count=4 reached the plugin: the stream ended after 4 rows


def test_a_misspelt_source_property_is_a_400_naming_the_close_one(client, packages):
    install(client, packages, "random")
    r = client.post("/streams", json={"sql": 'CREATE STREAM demo () WITH (TYPE="random", sed="3")'})
    assert r.status_code == 400
    body = r.json()
    assert body["type"] == "SqlError" and (body["line"], body["col"]) == (1, 44)
    assert body["message"].startswith("stream 'demo': source 'random' has no property 'sed' at line 1, col 44; "
                                      "did you mean 'seed'? its properties: batch_size, count, interval, pattern, seed")
    r = client.post("/streams", json={"sql": 'CREATE STREAM demo () WITH (TYPE="random", interval="fast")'})
    assert r.status_code == 400
    assert r.json()["message"].startswith("property 'interval' of source 'random' must be an integer, got 'fast'")
    r = client.post("/streams", json={"sql": 'CREATE STREAM demo () WITH (TYPE="memory", qos="1")'})
    assert r.status_code == 400 and "built-in source 'memory' takes its own settings from" in r.json()["message"]
    assert client.get("/streams").json() == []


def test_a_sinks_properties_are_checked_against_its_metadata_at_rule_create(client, packages, tmp_path):
    install(client, packages, "file")
    client.post("/streams", json={"sql": 'CREATE STREAM s () WITH (TYPE="memory", DATASOURCE="props-in")'})
    out = tmp_path / "out.jsonl"
    r = client.post("/rules", json={"id": "bad", "sql": "SELECT * FROM s", "actions": [{"file": {"pth": str(out)}}]})
    assert r.status_code == 400
    assert r.json()["message"] == (
        "rule 'bad': action 0 gives sink 'file' the property 'pth', which it does not have; did you mean 'path'? "
        "its properties: fields, flush_every, path (and eKuiper's common sink properties such as sendSingle, "
        "fields, dataTemplate, resendInterval)")
    assert client.get("/rules").json() == []
    action = {"file": {"PATH": str(out), "sendSingle": True, "resendInterval": 100}}
    r = client.post("/rules", json={"id": "good", "sql": "SELECT * FROM s", "actions": [action],
                                    "triggered": False})
    assert r.status_code == 201, r.text
    assert json.loads(client.get("/rules/good").text)["actions"] == [action]  # stored as written
