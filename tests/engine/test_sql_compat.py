"""eKuiper's semantics the engine follows where it used to differ: GROUP BY a SELECT alias,
HAVING aggregates over a window that is not grouped, a trailing comma in CREATE STREAM, the
binary format's field, case-insensitive names and the sendError rule option."""

from __future__ import annotations

import pyarrow as pa
import pytest

from engine_helpers import T0, Harness
from plutino.engine import RuleManager
from plutino.engine.errors import RuleError, SqlError
from plutino.engine.query import query
from plutino.engine.rules import RuleDef
from plutino.engine.stages import ISOLATE_RUNS
from plutino.engine.streams import parse_create_stream
from plutino.io.formats import decode

ROWS = pa.RecordBatch.from_pydict({"a": list(range(12))})


# -- GROUP BY a SELECT alias -----------------------------------------------------------------

@pytest.mark.parametrize("schema", [ROWS.schema, None], ids=["schema", "schemaless"])
def test_group_by_a_select_alias_groups_by_the_aliased_expression(schema):
    out = query("SELECT a % 4 AS k, count(*) AS n FROM s GROUP BY k, COUNTWINDOW(12)", [ROWS], schema=schema)
    assert sorted(out.to_pylist(), key=lambda r: r["k"]) == [{"k": k, "n": 3} for k in range(4)]


def test_a_stream_column_wins_over_an_alias_of_the_same_name():
    batch = pa.RecordBatch.from_pydict({"a": [1, 2, 3, 4], "k": [0, 0, 0, 0]})
    out = query("SELECT a % 2 AS k, count(*) AS n FROM s GROUP BY k, COUNTWINDOW(4)", [batch], schema=batch.schema)
    assert out.num_rows == 1  # grouped by the column k (all 0), not by the alias


def test_having_reads_a_select_alias_on_a_schemaless_stream():
    batch = pa.RecordBatch.from_pydict({"a": [1, 1, 2, 3]})
    out = query("SELECT a AS k, count(*) AS n FROM s GROUP BY k, COUNTWINDOW(4) HAVING n > 1", [batch])
    assert out.to_pylist() == [{"k": 1, "n": 2}]


def test_grouping_by_an_aggregate_alias_is_refused():
    with pytest.raises(SqlError, match="cannot be used in GROUP BY"):
        query("SELECT count(*) AS c FROM s GROUP BY c, COUNTWINDOW(4)", [ROWS], schema=ROWS.schema)


# -- HAVING without grouping -------------------------------------------------------------------

def test_having_an_aggregate_keeps_every_row_of_the_windows_that_pass():
    out = query("SELECT * FROM s GROUP BY COUNTWINDOW(3) HAVING max(a) > 4", [ROWS.slice(0, 9)])
    assert out.column("a").to_pylist() == [3, 4, 5, 6, 7, 8]  # [0, 1, 2] fails, the other windows pass whole
    assert out.column_names == ["a"]


def test_hopping_count_window_with_having_count_emits_whole_windows():
    out = query("SELECT * FROM s GROUP BY COUNTWINDOW(5, 1) HAVING COUNT(*) > 2", [ROWS.slice(0, 6)])
    assert out.column("a").to_pylist() == [0, 1, 2, 3, 4, 1, 2, 3, 4, 5]


def test_order_by_an_aggregate_alone_sorts_the_rows_of_each_window():
    out = query("SELECT a FROM s GROUP BY COUNTWINDOW(3) HAVING sum(a) > 5 ORDER BY a DESC", [ROWS.slice(0, 6)])
    assert out.column("a").to_pylist() == [5, 4, 3]


def test_an_aggregate_in_select_still_makes_one_row_per_window():
    out = query("SELECT count(*) AS n FROM s GROUP BY COUNTWINDOW(3) HAVING count(*) > 2", [ROWS.slice(0, 6)])
    assert out.to_pylist() == [{"n": 3}, {"n": 3}]


# -- CREATE STREAM and FORMAT="binary" ---------------------------------------------------------

def test_a_trailing_comma_in_the_field_list_is_accepted():
    stream = parse_create_stream('CREATE STREAM s (a BIGINT, c STRUCT(x BIGINT,),) WITH (TYPE="memory")')
    assert [n for n, _ in stream.fields] == ["a", "c"]
    with pytest.raises(SqlError, match="expected a field name, got ','"):
        parse_create_stream('CREATE STREAM s (a BIGINT,,) WITH (TYPE="memory")')


def test_a_binary_payload_goes_to_the_declared_bytea_field_else_to_self():
    stream = parse_create_stream('CREATE STREAM s (image BYTEA) WITH (FORMAT="binary", TYPE="memory")')
    assert decode([b"\x00\x01"], "binary", stream.schema).to_pylist() == [{"image": b"\x00\x01"}]
    assert decode([b"\x02"], "binary", None).to_pylist() == [{"self": b"\x02"}]


def test_a_binary_stream_declaring_other_fields_is_refused():
    with pytest.raises(SqlError, match="declare one bytea field"):
        parse_create_stream('CREATE STREAM s (image BYTEA, n BIGINT) WITH (FORMAT="binary")')


# -- rule options --------------------------------------------------------------------------------

def test_rule_options_and_engine_sink_properties_match_case_insensitively():
    rule = RuleDef.from_dict({"id": "r", "sql": "SELECT * FROM s", "actions": [{"log": {"RETRYCOUNT": 2}}],
                              "options": {"SendError": True, "isEventTime": False, "qos": 0, "concurrency": 1}})
    assert rule.send_error and rule.actions[0].retry_count == 2
    assert "qos" not in rule.options  # eKuiper's default: accepted, nothing to do


def test_an_ekuiper_option_asking_for_what_plutino_lacks_is_refused():
    with pytest.raises(RuleError, match="option qos=1 asks for eKuiper behaviour Plutino does not have"):
        RuleDef.from_dict({"id": "r", "sql": "SELECT * FROM s", "actions": [{"log": {}}], "options": {"qos": 1}})


def test_send_error_sends_a_failed_batch_to_the_sinks_as_an_error_row(h: Harness):
    h.stream("demo")
    r = h.rule("r1", "SELECT a / b AS q FROM demo", options={"sendError": True})
    r.feed([{"a": 4, "b": 2}])
    r.feed([{"a": 1, "b": 0}])
    r.feed([{"a": 9, "b": 3}])
    rows = r.rows()
    assert rows[0] == {"q": 2} and rows[2] == {"q": 3}
    assert list(rows[1]) == ["error"] and "divide by zero" in rows[1]["error"]


def test_without_send_error_a_failed_batch_is_only_counted(h: Harness):
    h.stream("demo")
    r = h.rule("r1", "SELECT a / b AS q FROM demo")
    r.feed([{"a": 1, "b": 0}])
    r.feed([{"a": 9, "b": 3}])
    assert r.rows() == [{"q": 3}]
    assert r.status()["op_1_project_0_exceptions_total"] == 1


def test_a_failing_row_inside_a_batch_drops_only_that_row(h: Harness):
    h.stream("demo")
    r = h.rule("r1", "SELECT a / b AS q FROM demo WHERE a / b < 5", options={"sendError": True})
    r.feed([{"a": a, "b": b} for a, b in [(4, 2), (1, 0), (9, 3), (30, 3), (5, 0), (8, 1)]])
    rows = r.rows()
    assert [row for row in rows if "q" in row] == [{"q": 2}, {"q": 3}]
    assert len([row for row in rows if "error" in row]) == 2  # one per failing row, as eKuiper's
    status = r.status()
    assert status["op_1_filter_0_exceptions_total"] == 2
    assert status["op_1_filter_0_records_in_total"] == 6


def test_a_batch_where_every_row_fails_stops_isolating_after_a_budget(h: Harness):
    h.stream("demo")
    r = h.rule("r1", "SELECT a / b AS q FROM demo")
    r.feed([{"a": i, "b": 0} for i in range(10_000)])
    r.feed([{"a": 9, "b": 3}])
    assert r.rows() == [{"q": 3}]
    assert 1 < r.status()["op_1_project_0_exceptions_total"] <= ISOLATE_RUNS


def test_drop_stream_force_keeps_the_rules(manager: RuleManager):
    manager.create_stream('CREATE STREAM demo () WITH (TYPE="memory", DATASOURCE="x")')
    manager.create_rule({"id": "r1", "sql": "SELECT * FROM demo", "actions": [{"log": {}}]})
    with pytest.raises(RuleError, match="used by rule"):
        manager.drop_stream("demo")
    manager.drop_stream("demo", force=True)
    assert manager.list_streams() == []
    assert [r["id"] for r in manager.list_rules()] == ["r1"]


def test_rule_id_rule_start_and_event_time_read_the_rule_and_the_batch(h: Harness):
    h.stream("demo", "a BIGINT")
    r = h.rule("r_fn", "SELECT a, rule_id() AS r, rule_start() AS s, event_time() AS t FROM demo")
    h.clock.set(T0 + 1234)
    r.feed([{"a": 1}])
    (row,) = r.rows()
    assert row["r"] == "r_fn" and row["s"] == r.runtime.last_start_ms and row["t"] == T0 + 1234
    w = h.rule("w_fn", "SELECT count(*) AS n, event_time() AS t FROM demo GROUP BY TUMBLINGWINDOW(ss, 10)")
    w.feed([{"a": 2}])
    w.tick(T0 + 10_000)
    assert w.rows() == [{"n": 1, "t": T0 + 10_000}]  # in a window: its end
