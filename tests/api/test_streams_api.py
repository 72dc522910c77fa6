"""/streams in process: eKuiper's bodies, texts and status codes, and the error shape."""

from __future__ import annotations


def test_stream_is_created_listed_described_updated_and_dropped(client):
    sql = 'CREATE STREAM s1 (a BIGINT, b STRING) WITH (TYPE="memory", DATASOURCE="t1")'
    r = client.post("/streams", json={"sql": sql})
    assert (r.status_code, r.text) == (201, "Stream s1 is created.")
    assert r.headers["content-type"].startswith("text/plain")
    assert client.get("/streams").json() == ["s1"]
    described = client.get("/streams/s1").json()
    assert described["Name"] == "s1"
    assert described["StreamFields"] == [{"Name": "a", "FieldType": "bigint"}, {"Name": "b", "FieldType": "string"}]
    assert described["Options"]["type"] == "memory" and described["Options"]["datasource"] == "t1"

    r = client.put("/streams/s1", json={"sql": 'CREATE STREAM s1 (a FLOAT) WITH (TYPE="memory", DATASOURCE="t2")'})
    assert (r.status_code, r.text) == (200, "Stream s1 is updated.")
    assert client.get("/streams/s1").json()["StreamFields"] == [{"Name": "a", "FieldType": "float"}]

    r = client.delete("/streams/s1")
    assert (r.status_code, r.text) == (200, "Stream s1 is dropped.")
    assert client.get("/streams").json() == []


def test_a_body_sent_without_json_content_type_is_refused_with_415(client):
    # curl -X POST .../streams -d '{...}' sends application/x-www-form-urlencoded, as a web page's form can
    r = client.post("/streams", content=b'{"sql": "CREATE STREAM s2 () WITH (TYPE=\\"memory\\", DATASOURCE=\\"t\\")"}',
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert (r.status_code, r.json()["message"]) == (415, (
        "POST /streams: the body is sent as 'application/x-www-form-urlencoded', and this API reads JSON bodies only:"
        " send the header 'Content-Type: application/json' (curl: -H 'Content-Type: application/json'); the"
        " plutino CLI sends it"))
    assert client.get("/streams").json() == []


def test_bad_sql_is_400_with_the_sql_error_code_and_its_place(client):
    r = client.post("/streams", json={"sql": 'CREATE STREAM bad (a BIGNT) WITH (TYPE="memory")'})
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == 2001 and body["type"] == "SqlError"
    assert body["message"].startswith("unknown type 'BIGNT' for field 'a' at line 1, col 22")
    assert (body["line"], body["col"]) == (1, 22)


def test_a_stream_of_an_unknown_source_type_names_the_ones_there_are(client):
    r = client.post("/streams", json={"sql": 'CREATE STREAM s () WITH (TYPE="memroy")'})
    assert r.status_code == 400
    assert 'did you mean TYPE="memory"?' in r.json()["message"]


def test_unknown_stream_is_404_and_a_taken_name_409(client):
    r = client.get("/streams/nope")
    assert r.status_code == 404
    assert r.json() == {"error": 1002, "message": "stream 'nope' not found; existing streams: none",
                        "type": "NotFoundError"}
    sql = 'CREATE STREAM s () WITH (TYPE="memory", DATASOURCE="t")'
    assert client.post("/streams", json={"sql": sql}).status_code == 201
    r = client.post("/streams", json={"sql": sql})
    assert r.status_code == 409
    assert r.json()["message"] == "stream 's' already exists; drop it first (DROP STREAM s) or choose another name"
    assert client.delete("/streams/nope").status_code == 404


def test_put_refuses_a_statement_for_another_stream(client):
    client.post("/streams", json={"sql": 'CREATE STREAM s () WITH (TYPE="memory", DATASOURCE="t")'})
    r = client.put("/streams/s", json={"sql": 'CREATE STREAM other () WITH (TYPE="memory")'})
    assert r.status_code == 400
    assert r.json()["message"] == ("the statement defines stream 'other', but the path says 's'; PUT /streams/other,"
                                   " or name the stream s in the statement")


def test_a_body_without_sql_is_400_naming_the_field(client):
    r = client.post("/streams", json={"statement": "CREATE STREAM s ()"})
    assert r.status_code == 400
    assert r.json()["message"].startswith("sql: Field required")
    r = client.post("/streams", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"]
