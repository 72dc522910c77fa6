"""CREATE / DROP / DESCRIBE STREAM and SHOW STREAMS: parsing, types, errors, the catalog."""

from __future__ import annotations

import pyarrow as pa
import pytest

from plutino.engine import Catalog, RuleManager, SqlError
from plutino.engine.errors import AlreadyExistsError, NotFoundError, RuleError
from plutino.engine.streams import (
    CreateStream,
    DescribeStream,
    DropStream,
    ShowStreams,
    parse_create_stream,
    parse_stream_statement,
)


def test_create_stream_maps_every_ekuiper_type_to_an_arrow_type():
    s = parse_create_stream(
        "CREATE STREAM demo (temperature FLOAT, humidity BIGINT, name STRING, at DATETIME, ok BOOLEAN, raw BYTEA, "
        "tags ARRAY(STRING), pos STRUCT(x FLOAT, `y pos` FLOAT), deep ARRAY(STRUCT(a BIGINT))) "
        'WITH (DATASOURCE="topic/demo", TYPE="mqtt", FORMAT="JSON", CONF_KEY="ext", TIMESTAMP="humidity");'
    )
    assert s.name == "demo" and not s.schemaless
    assert s.schema == pa.schema(
        [
            ("temperature", pa.float64()),
            ("humidity", pa.int64()),
            ("name", pa.string()),
            ("at", pa.timestamp("us")),
            ("ok", pa.bool_()),
            ("raw", pa.binary()),
            ("tags", pa.list_(pa.string())),
            ("pos", pa.struct([("x", pa.float64()), ("y pos", pa.float64())])),
            ("deep", pa.list_(pa.struct([("a", pa.int64())]))),
        ]
    )
    assert (s.datasource, s.type, s.format, s.conf_key, s.timestamp) == (
        "topic/demo",
        "mqtt",
        "json",
        "ext",
        "humidity",
    )


def test_schemaless_stream_has_no_schema_and_eKuiper_defaults():
    s = parse_create_stream('create stream demo () with (TYPE="random")')
    assert s.schemaless and s.schema is None and s.fields == ()
    assert (s.type, s.format, s.conf_key, s.datasource, s.timestamp) == ("random", "json", "default", "", None)
    assert s.source_properties() == {"format": "json"}


def test_describe_has_ekuipers_shape():
    sql = 'CREATE STREAM demo (temperature FLOAT, tags ARRAY(BIGINT)) WITH (DATASOURCE="t", TYPE="memory")'
    assert parse_create_stream(sql).describe() == {
        "Name": "demo",
        "StreamFields": [{"Name": "temperature", "FieldType": "float"}, {"Name": "tags", "FieldType": "array(bigint)"}],
        "Options": {
            "datasource": "t",
            "type": "memory",
            "format": "json",
            "conf_key": "default",
            "shared": "false",
            "strict_validation": "false",
        },
        "Statement": sql,
    }


def test_drop_describe_show_statements_parse():
    assert parse_stream_statement("DROP STREAM demo") == DropStream("demo")
    assert parse_stream_statement("describe stream `my demo`;") == DescribeStream("my demo")
    assert parse_stream_statement("SHOW STREAMS") == ShowStreams()
    assert isinstance(parse_stream_statement('CREATE STREAM d () WITH (TYPE="memory")'), CreateStream)


@pytest.mark.parametrize(
    "sql, message",
    [
        (
            'CREATE STREAM demo (a int) WITH (TYPE="memory")',
            "unknown type 'int' for field 'a' at line 1, col 23; did you mean 'bigint'? use one of: bigint, float, "
            "string, datetime, boolean, bytea, array(<type>), struct(<field> <type>, ...)",
        ),
        (
            'CREATE STREAM demo (a bigint WITH (TYPE="memory")',
            "expected ',' or ')' after field 'a', got 'WITH' at line 1, col 30; separate fields with ',' and close the "
            "list with ')'",
        ),
        (
            'CREATE STREAM demo (a bigint) WITH ("TYPE"="memory")',
            "expected a property name, got 'TYPE' at line 1, col 37; write NAME=\"value\", e.g. TYPE=\"random\"",
        ),
        (
            'CREATE STREAM demo (a bigint) WITH (seed=1, SEED=2)',
            "property SEED is given twice at line 1, col 45; keep one",
        ),
        (
            "SELEC * FROM demo",
            "expected a stream statement, got 'SELEC' at line 1, col 1; a stream statement is CREATE, DROP or "
            "DESCRIBE STREAM (or TABLE), SHOW STREAMS or SHOW TABLES",
        ),
        ("DROP STREAM", "expected a stream name, got the end of the statement at line 1, col 12"),
        (
            'CREATE STREAM demo (a bigint) WITH (TIMESTAMP="b")',
            "TIMESTAMP=\"b\" names no field of stream 'demo'; fields: a",
        ),
        (
            'CREATE STREAM demo (a string) WITH (TIMESTAMP="a")',
            "TIMESTAMP field 'a' of stream 'demo' is string; the event-time field must be bigint "
            "(milliseconds since the epoch) or datetime",
        ),
        (
            "CREATE STREAM demo (a array) WITH ()",
            "array field 'a' needs its element type at line 1, col 28; write a ARRAY(BIGINT), for example",
        ),
        (
            "CREATE STREAM demo (a bigint, a float)",
            "field 'a' is declared twice at line 1, col 31; give each field one declaration",
        ),
        (
            'CREATE STREAM d (a bigint) WITH (FORMAT="xml")',
            "stream 'd' has FORMAT=\"xml\", which Plutino cannot decode; use one of: json, binary, delimited",
        ),
        (
            "CREATE STREAM d (a bigint) WITH (TYPE=random)",
            "the value of TYPE must be a quoted string, got 'random' at line 1, col 39; write TYPE=\"random\"",
        ),
        (
            'CREATE STREAM d (a bigint) WITH (TYPE="x", TYPE="y")',
            "property TYPE is given twice at line 1, col 44; keep one",
        ),
        (
            'CREATE TABLE t (a bigint) WITH (KIND="lookup")',
            "lookup table 't' has no KEY; name the field that identifies a row: "
            "WITH (..., KIND=\"lookup\", KEY=\"id\")",
        ),
        (
            'CREATE TABLE t (a bigint) WITH (KIND="hash", KEY="a")',
            "table 't' has KIND=\"hash\"; use KIND=\"scan\" (rows kept from the source) or KIND=\"lookup\" (rows kept "
            "by KEY)",
        ),
        (
            'CREATE TABLE t (a bigint) WITH (KEY="b")',
            "KEY=\"b\" names no field of table 't'; fields: a",
        ),
        (
            'CREATE TABLE t (a bigint) WITH (RETAIN_SIZE="-1")',
            "table 't' has RETAIN_SIZE=\"-1\"; give a whole number of rows from 0 (the host's limit) to 10000000",
        ),
        (
            'CREATE STREAM s (a bigint) WITH (KIND="lookup")',
            "KIND is a property of tables at line 1, col 34; remove it, or create a table: CREATE TABLE s (...) "
            "WITH (...)",
        ),
        (
            "CREATE STREAM d WITH ()",
            "expected '(', got 'WITH' at line 1, col 17; write the fields in brackets after the name, or '()' for a "
            "schemaless stream: CREATE STREAM d () WITH (...)",
        ),
        (
            'CREATE STREAM d () WITH (TYPE="x") extra',
            "unexpected 'extra' after the end of the statement at line 1, col 36; remove it, or split the statements",
        ),
        (
            'CREATE STREAM d (\n  a bigint,\n  b flaot\n) WITH (TYPE="x")',
            "unknown type 'flaot' for field 'b' at line 3, col 5; did you mean 'float'? use one of: bigint, float, "
            "string, datetime, boolean, bytea, array(<type>), struct(<field> <type>, ...)",
        ),
    ],
)
def test_stream_statement_errors_name_the_place_and_the_fix(sql, message):
    with pytest.raises(SqlError) as err:
        parse_stream_statement(sql)
    assert str(err.value) == message


def test_catalog_calls_the_persistence_hooks_and_restores_without_them():
    calls = []
    catalog = Catalog(
        on_put=lambda kind, name, rec: calls.append(("put", kind, name, rec)),
        on_delete=lambda kind, name: calls.append(("delete", kind, name)),
    )
    s = parse_create_stream('CREATE STREAM demo () WITH (TYPE="memory")')
    catalog.put_stream(s)
    assert calls == [("put", "stream", "demo", {"name": "demo", "sql": s.sql})]
    with pytest.raises(AlreadyExistsError) as err:
        catalog.put_stream(s)
    assert str(err.value) == "stream 'demo' already exists; drop it first (DROP STREAM demo) or choose another name"
    catalog.drop_stream("demo")
    assert calls[-1] == ("delete", "stream", "demo")
    with pytest.raises(NotFoundError) as err:
        catalog.get_stream("demo")
    assert str(err.value) == "stream 'demo' not found; existing streams: none"

    restored = Catalog(on_put=lambda *a: calls.append("unexpected"))
    restored.load(
        streams=[{"name": "demo", "sql": s.sql}],
        rules=[{"id": "r1", "sql": "SELECT * FROM demo", "actions": [{"log": {}}]}],
    )
    assert restored.get_stream("demo") == s
    assert restored.get_rule("r1").sql == "SELECT * FROM demo"
    assert "unexpected" not in calls


def test_a_failing_persistence_hook_leaves_the_catalog_unchanged():
    def refuse(kind, name, record):
        raise OSError("disk full")

    catalog = Catalog(on_put=refuse)
    with pytest.raises(OSError):
        catalog.put_stream(parse_create_stream('CREATE STREAM demo () WITH (TYPE="memory")'))
    assert catalog.streams() == []


def test_manager_runs_stream_statements_like_post_streams(manager: RuleManager):
    assert (
        manager.exec_stream_sql('CREATE STREAM demo (a BIGINT) WITH (TYPE="memory", DATASOURCE="x")')
        == "Stream demo is created."
    )
    assert manager.exec_stream_sql("SHOW STREAMS") == ["demo"]
    assert manager.exec_stream_sql("DESCRIBE STREAM demo")["StreamFields"] == [{"Name": "a", "FieldType": "bigint"}]
    assert manager.exec_stream_sql("DROP STREAM demo") == "Stream demo is dropped."
    assert manager.list_streams() == []


def test_a_stream_of_an_unknown_source_type_is_refused(manager: RuleManager):
    with pytest.raises(RuleError) as err:
        manager.create_stream('CREATE STREAM demo () WITH (TYPE="memroy")')
    assert str(err.value) == (
        "stream 'demo' has TYPE=\"memroy\", but no source plugin has that name; "
        'did you mean TYPE="memory"? install it, or use one of: memory'
    )


def test_a_stream_read_by_a_rule_cannot_be_dropped(manager: RuleManager):
    manager.create_stream('CREATE STREAM demo () WITH (TYPE="memory", DATASOURCE="x")')
    manager.create_rule({"id": "r1", "sql": "SELECT * FROM demo", "actions": [{"log": {}}], "triggered": False})
    with pytest.raises(RuleError) as err:
        manager.drop_stream("demo")
    assert str(err.value) == (
        "stream 'demo' is used by rule(s) r1; delete them first, or drop the definition anyway with "
        "DELETE /streams/demo?force=true (the rules stay, and cannot start again until the stream is created again)")
    manager.delete_rule("r1")
    manager.drop_stream("demo")
