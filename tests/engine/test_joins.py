"""JOINs in rules, as eKuiper runs them: a stream with a table (scan or lookup, fed by a memory
source) per batch, and two streams within a window; every refusal names the fix."""

from __future__ import annotations

import pyarrow as pa
import pytest

from engine_helpers import T0, Harness
from helpers import wait_for
from plutino.engine import RuleManager, SqlError
from plutino.engine.planner import plan_query
from plutino.engine.plugin_functions import NoPlugins
from plutino.engine.streams import parse_create_stream


def table(h: Harness, name: str, fields: str, props: str = "") -> None:
    h.manager.create_stream(f'CREATE TABLE {name} ({fields}) WITH (TYPE="memory", DATASOURCE="tbl_{name}"'
                            f'{", " + props if props else ""})')


def fill(h: Harness, rule: str, name: str, rows: list[dict], topic: str = "") -> None:
    """Publish rows to a table's topic and wait until the rule's table has taken them in."""
    status = h.manager.runtime(rule).status
    wait_for(lambda: status()[f"source_{name}_0_connection_status"] == 1, "the table's source to subscribe")
    before = status()[f"source_{name}_0_records_out_total"]
    h.broker.publish(f"tbl_{topic or name}", pa.RecordBatch.from_pylist(rows))
    wait_for(lambda: status()[f"source_{name}_0_records_out_total"] == before + len(rows), "the table update")


def test_a_stream_joins_a_lookup_table_by_key_and_sees_its_updates(h: Harness):
    h.stream("orders", "id BIGINT, cust BIGINT, amount FLOAT")
    table(h, "customers", "cid BIGINT, name STRING", 'KIND="lookup", KEY="cid"')
    r = h.rule("j", "SELECT o.id, c.name, amount FROM orders AS o LEFT JOIN customers AS c ON o.cust = c.cid "
                    "WHERE amount > 1")
    fill(h, "j", "c", [{"cid": 1, "name": "ann"}, {"cid": 2, "name": "bob"}], "customers")
    r.feed([{"id": 10, "cust": 2, "amount": 5.0}, {"id": 11, "cust": 3, "amount": 7.0},
            {"id": 12, "cust": 1, "amount": 0.5}, {"id": 13, "cust": 1, "amount": 2.0}])
    assert r.rows() == [{"id": 10, "name": "bob", "amount": 5.0}, {"id": 11, "name": None, "amount": 7.0},
                        {"id": 13, "name": "ann", "amount": 2.0}]
    fill(h, "j", "c", [{"cid": 2, "name": "bo"}], "customers")  # a lookup table keeps the newest row of a key
    r.feed([{"id": 14, "cust": 2, "amount": 3.0}])
    assert r.rows() == [{"id": 14, "name": "bo", "amount": 3.0}]
    status = r.status()
    assert status["source_c_0_records_in_total"] == 3 and status["op_1_join_0_records_in_total"] == 5


def test_an_inner_join_with_a_scan_table_and_select_star(h: Harness):
    h.stream("ev", "k STRING, v BIGINT")
    table(h, "dim", "k STRING, label STRING, tags ARRAY(STRING)")
    r = h.rule("j", "SELECT * FROM ev INNER JOIN dim ON ev.k = dim.k")
    fill(h, "j", "dim", [{"k": "a", "label": "A", "tags": ["x"]}, {"k": "a", "label": "A2", "tags": []}])
    r.feed([{"k": "a", "v": 1}, {"k": "b", "v": 2}])
    assert r.rows() == [{"k": "a", "v": 1, "label": "A", "tags": ["x"]}, {"k": "a", "v": 1, "label": "A2", "tags": []}]


def test_two_streams_join_within_a_tumbling_window(h: Harness):
    h.stream("left_s", "id BIGINT, a STRING")
    h.stream("right_s", "id BIGINT, b STRING")
    r = h.rule("j", "SELECT left_s.id, a, b FROM left_s FULL JOIN right_s ON left_s.id = right_s.id "
                    "GROUP BY TUMBLINGWINDOW(ss, 10)")
    r.feed([{"id": 1, "a": "x"}, {"id": 2, "a": "y"}])
    h.broker.publish("in_right_s", pa.RecordBatch.from_pylist([{"id": 2, "b": "q"}, {"id": 3, "b": "r"}]))
    wait_for(lambda: r.status()["source_right_s_0_records_out_total"] == 2, "the right stream")
    r.settle()
    r.tick(T0 + 10_000)
    assert r.rows() == [
        {"id": 1, "a": "x", "b": None}, {"id": 2, "a": "y", "b": "q"}, {"id": None, "a": None, "b": "r"}]


def test_a_windowed_aggregate_over_a_stream_joined_with_a_table(h: Harness):
    h.stream("ev", "k STRING, v BIGINT")
    table(h, "dim", "k STRING, grp STRING", 'KEY="k"')
    r = h.rule("j", "SELECT grp, sum(v) AS total FROM ev JOIN dim ON ev.k = dim.k "
                    "GROUP BY grp, TUMBLINGWINDOW(ss, 10) ORDER BY grp")
    fill(h, "j", "dim", [{"k": "a", "grp": "g1"}, {"k": "b", "grp": "g1"}, {"k": "c", "grp": "g2"}])
    r.feed([{"k": "a", "v": 1}, {"k": "b", "v": 2}, {"k": "c", "v": 4}, {"k": "z", "v": 8}])
    r.tick(T0 + 10_000)
    assert r.rows() == [{"grp": "g1", "total": 3}, {"grp": "g2", "total": 4}]


STREAMS = {s.name: s for s in map(parse_create_stream, [
    'CREATE STREAM s (id BIGINT, v FLOAT, st STRUCT(a BIGINT)) WITH (TYPE="memory")',
    'CREATE STREAM s2 (id BIGINT, w FLOAT) WITH (TYPE="memory")',
    'CREATE TABLE t (id BIGINT, name STRING) WITH (TYPE="memory", KIND="lookup", KEY="id")',
])}


@pytest.mark.parametrize("sql, message", [
    ("SELECT id FROM s JOIN t ON s.id = t.id", "column 'id' is ambiguous: it may be of s or t at line 1, col 8; "
     "qualify it: s.id"),
    ("SELECT * FROM s JOIN s2 ON s.id = s2.id", "a JOIN of two streams (s, s2) needs a window at line 1, col 22; "
     "add one: GROUP BY TUMBLINGWINDOW(ss, 10)"),
    ("SELECT * FROM t", "'t' is a table, which a rule reads only through a JOIN at line 1, col 15; read a stream "
     "and join the table: SELECT ... FROM <stream> JOIN t ON ..."),
    ("SELECT * FROM s RIGHT JOIN t ON s.id = t.id", "a RIGHT JOIN with table 't' would repeat its unmatched rows "
     "with every event at line 1, col 28; use INNER or LEFT JOIN with a table"),
    ("SELECT * FROM s LEFT JOIN t ON s.v > 2", "the ON of a LEFT JOIN needs an equality of the two sides at line 1, "
     "col 32; e.g. ON s.id = t.id"),
    ("SELECT * FROM s JOIN t ON s.id = t.idd", "unknown column 'idd' of t in ON at line 1, col 34; did you mean "
     "'id'? (t has columns: id, name)"),
    ("SELECT * FROM s JOIN nope ON s.id = nope.id", "unknown stream or table 'nope' at line 1, col 22; create it "
     "with CREATE TABLE nope (...) WITH (...) (streams and tables: s, s2, t)"),
    ("SELECT * FROM s JOIN t", "JOIN t has no ON at line 1, col 22; join on a key: ON s.id = t.id, or use CROSS JOIN"),
    ("SELECT * FROM s JOIN t ON s.st = t.id", "cannot join on a struct<a: int64> value at line 1, col 27; join on "
     "numbers, strings or booleans"),
    ("SELECT * FROM s JOIN t ON s.id = t.id JOIN t ON s.id = t.id", "'t' is joined twice under one name at line 1, "
     "col 44; give each its own alias: JOIN t AS t2"),
])
def test_join_mistakes_are_refused_with_the_fix(sql: str, message: str):
    with pytest.raises(SqlError) as err:
        plan_query(sql, STREAMS, NoPlugins())
    assert str(err.value) == message


def test_tables_and_streams_share_names_and_answer_as_ekuiper(manager: RuleManager):
    created = manager.exec_stream_sql('CREATE TABLE t (id BIGINT) WITH (TYPE="memory", DATASOURCE="t", KEY="id")')
    assert created == "Table t is created."
    assert manager.exec_stream_sql("SHOW TABLES") == ["t"] and manager.list_streams() == []
    with pytest.raises(Exception, match="table 't' already exists; drop it first \\(DROP TABLE t\\)"):
        manager.create_stream('CREATE STREAM t () WITH (TYPE="memory")')
    with pytest.raises(Exception, match="stream 't' not found \\(t is a table\\); existing streams: none"):
        manager.drop_stream("t")
    manager.create_stream('CREATE STREAM s (id BIGINT) WITH (TYPE="memory", DATASOURCE="s")')
    manager.create_rule({"id": "r", "sql": "SELECT * FROM s JOIN t ON s.id = t.id", "actions": [{"log": {}}]})
    with pytest.raises(Exception, match="table 't' is used by rule\\(s\\) r"):
        manager.drop_stream("t", table=True)
    assert manager.exec_stream_sql("DESCRIBE TABLE t")["Options"]["kind"] == "scan"


def test_a_memory_sink_with_rowkind_updates_and_deletes_a_lookup_tables_rows(h: Harness):
    h.stream("upd", "id BIGINT, name STRING, action STRING")
    h.stream("ev", "id BIGINT")
    table(h, "names", "id BIGINT, name STRING", 'KIND="lookup", KEY="id"')
    writer = h.rule("w", "SELECT * FROM upd", actions=[{"memory": {"topic": "tbl_names", "rowkindField": "action",
                                                                   "keyField": "id"}}])
    r = h.rule("j", "SELECT ev.id, name FROM ev LEFT JOIN names ON ev.id = names.id")
    state = lambda: h.manager.runtime("j").status()  # noqa: E731
    wait_for(lambda: state()["source_names_0_connection_status"] == 1, "the table's source to subscribe")
    writer.feed([{"id": 1, "name": "a", "action": "insert"}, {"id": 2, "name": "b", "action": "insert"}])
    wait_for(lambda: state()["source_names_0_records_out_total"] == 2, "the inserts")
    writer.feed([{"id": 1, "name": None, "action": "delete"}, {"id": 2, "name": "B", "action": "update"}])
    wait_for(lambda: state()["source_names_0_records_out_total"] == 4, "the delete and the update")
    r.feed([{"id": 1}, {"id": 2}])
    assert r.rows() == [{"id": 1, "name": None}, {"id": 2, "name": "B"}]


def test_a_text_key_joins_a_numeric_table_key_by_its_digits(h: Harness):
    h.stream("ev")  # schemaless: the id arrives as text
    table(h, "dim", "id BIGINT, name STRING", 'KIND="lookup", KEY="id"')
    r = h.rule("j", "SELECT ev.id, name FROM ev LEFT JOIN dim ON ev.id = dim.id")
    fill(h, "j", "dim", [{"id": 7, "name": "seven"}])
    r.feed([{"id": "7"}, {"id": "x"}])
    assert r.rows() == [{"id": "7", "name": "seven"}, {"id": "x", "name": None}]


def test_the_rest_of_on_filters_an_inner_join_and_cross_join_pairs_every_row(h: Harness):
    h.stream("ev", "k BIGINT, v BIGINT")
    table(h, "lim", "k BIGINT, cap BIGINT", 'KEY="k"')
    table(h, "tags", "tag STRING")
    r = h.rule("j", "SELECT ev.k, v, tag FROM ev INNER JOIN lim ON ev.k = lim.k AND v < cap CROSS JOIN tags")
    fill(h, "j", "lim", [{"k": 1, "cap": 10}, {"k": 2, "cap": 5}])
    fill(h, "j", "tags", [{"tag": "a"}, {"tag": "b"}])
    r.feed([{"k": 1, "v": 3}, {"k": 2, "v": 7}, {"k": 3, "v": 0}])
    assert r.rows() == [{"k": 1, "v": 3, "tag": "a"}, {"k": 1, "v": 3, "tag": "b"}]
