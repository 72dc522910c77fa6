"""The rules of bad input, one function at a time: names (plutino.names), the SQL's limits
(engine.sql_limits), JSON's depth (plutino.json_depth), rule option bounds, and a damaged
store row read as damaged instead of raising. End to end over HTTP: tests/api/test_bad_input.py."""

from __future__ import annotations

import json
import sqlite3

import pytest

from plutino.engine.errors import RuleError, SqlError
from plutino.engine.rules import OPTION_BOUNDS, SINK_PROP_BOUNDS, RuleDef
from plutino.engine.sql import parse_select
from plutino.engine.sql_limits import MAX_SQL_CHARS, MAX_SQL_DEPTH, check_sql_limits
from plutino.engine.streams import parse_create_stream
from plutino.json_depth import MAX_JSON_DEPTH, JsonTooDeep, loads, too_deep_at
from plutino.names import CONF_KEY, FUNCTION_NAME, PLUGIN_NAME, RULE_ID, STREAM_NAME
from plutino.store import PluginRecord, Store

# ---------------------------------------------------------------- names


@pytest.mark.parametrize("rule, good, bad", [
    (RULE_ID, ["r1", "a-b_C", "x" * 128], ["rr\n", "\nrr", "", "x" * 129, "a/b", "..", "a b", "é", None, 7]),
    (STREAM_NAME, ["demo", "my-stream"], ["a/b", "..", "s\n", "x" * 129]),
    (PLUGIN_NAME, ["echo", "my-plugin_2", "p" * 63], ["p" * 64, "bad name!", "echo\n", ""]),
    (FUNCTION_NAME, ["echo", "_f2", "f" * 128], ["2f", "no-dash", "f\n", "f" * 129, ""]),
    (CONF_KEY, ["default", "demo_conf"], ["a.b", "a/b", "k\n"]),
])
def test_every_name_rule_matches_the_whole_name(rule, good, bad):
    assert all(rule.ok(name) for name in good)
    assert not any(rule.ok(name) for name in bad)


def test_a_name_message_names_the_rule_and_the_fix():
    assert RULE_ID.message("rr\n") == "rule id 'rr\\n' is not valid: use 1 to 128 letters, digits, '-' or '_'"
    assert PLUGIN_NAME.message("a b", "package p.zip: name") == (
        "package p.zip: name 'a b' is not valid: use 1 to 63 letters, digits, '-' or '_'")


def test_a_stream_named_like_a_path_is_refused_at_its_name():
    with pytest.raises(SqlError) as err:
        parse_create_stream('CREATE STREAM `a/b` () WITH (TYPE="memory")')
    assert (err.value.line, err.value.col) == (1, 15)
    assert err.value.problem.startswith("stream name 'a/b' is not valid")


# ---------------------------------------------------------------- the SQL's limits


def test_brackets_up_to_the_limit_parse_and_one_more_is_refused_where_it_opens():
    at_limit = "SELECT " + "(" * MAX_SQL_DEPTH + "a" + ")" * MAX_SQL_DEPTH + " FROM s"
    parse_select(at_limit)
    over = "SELECT " + "(" * (MAX_SQL_DEPTH + 1) + "a" + ")" * (MAX_SQL_DEPTH + 1) + " FROM s"
    with pytest.raises(SqlError) as err:
        parse_select(over)
    assert (err.value.line, err.value.col) == (1, 8 + MAX_SQL_DEPTH)
    assert str(err.value) == (f"the SQL nests brackets deeper than the limit of {MAX_SQL_DEPTH} levels at line 1,"
                              f" col {8 + MAX_SQL_DEPTH}; simplify the expression: fewer brackets or nested calls")


def test_brackets_inside_strings_and_quoted_names_do_not_count():
    many = "(" * 100
    check_sql_limits(f"SELECT '{many}' AS a, \"{many}\" AS b, `{many}` FROM s WHERE c = 'it''s (' ")


def test_a_statement_over_the_size_limit_is_refused_before_it_is_read():
    sql = "SELECT a FROM s WHERE b = '" + "x" * MAX_SQL_CHARS + "'"
    with pytest.raises(SqlError, match=f"the SQL is {len(sql)} characters long, over the limit of {MAX_SQL_CHARS}"):
        check_sql_limits(sql)


def test_a_rule_checks_the_limits_before_its_sql_travels_to_a_worker():
    body = {"id": "r", "sql": "SELECT " + "(" * 5000 + "a" + ")" * 5000 + " FROM s", "actions": [{"log": {}}]}
    with pytest.raises(SqlError, match="deeper than the limit of 24 levels"):
        RuleDef.from_dict(body)


def test_a_chain_too_deep_to_plan_is_a_sql_error_not_a_recursion_error():
    with pytest.raises(SqlError, match="the SQL is nested too deeply to plan"):
        parse_select("SELECT " + "NOT " * 5000 + "true FROM s")


# ---------------------------------------------------------------- JSON's depth


def test_json_depth_is_counted_outside_strings_and_stops_at_the_limit():
    assert too_deep_at('[["[[[[", "\\"[[["]]', 2) is None
    assert too_deep_at("[[[1]]]", 2) == 2
    assert too_deep_at(b"[" * 10**6) == MAX_JSON_DEPTH
    assert loads('{"a": [1, {"b": 2}]}') == {"a": [1, {"b": 2}]}


def test_a_document_too_deep_is_a_json_decode_error_with_its_place():
    with pytest.raises(json.JSONDecodeError) as err:
        loads("[" * 100 + "]" * 100)
    assert isinstance(err.value, JsonTooDeep)
    assert str(err.value) == ("it nests deeper than 64 levels of objects and arrays, Plutino's limit; flatten the"
                              " document: line 1 column 65 (char 64)")


# ---------------------------------------------------------------- option bounds


def _rule(options: dict | None = None, props: dict | None = None) -> dict:
    return {"id": "r", "sql": "SELECT * FROM s", "actions": [{"log": props or {}}], "options": options or {}}


@pytest.mark.parametrize("key", sorted(OPTION_BOUNDS))
def test_every_numeric_option_takes_its_bounds_and_nothing_past_them(key):
    low, high, unit = OPTION_BOUNDS[key]
    for value in (low, high):
        assert RuleDef.from_dict(_rule({key: value})).options[key] == value
    for value in (low - 1, high + 1, 10**30):
        with pytest.raises(RuleError) as err:
            RuleDef.from_dict(_rule({key: value}))
        assert str(err.value) == (f"rule 'r': {key} must be a whole number from {low} to {high} ({unit}), got"
                                  f" {value}")


@pytest.mark.parametrize("key", sorted(SINK_PROP_BOUNDS))
def test_every_numeric_sink_property_takes_its_bounds_and_nothing_past_them(key):
    low, high, unit = SINK_PROP_BOUNDS[key]
    RuleDef.from_dict(_rule(props={key: high}))
    with pytest.raises(RuleError, match=rf"log\.{key} must be a whole number from {low} to {high} \({unit}\)"):
        RuleDef.from_dict(_rule(props={key: high + 1}))


# ---------------------------------------------------------------- a damaged store row


def test_a_damaged_row_is_read_as_damaged_not_raised(tmp_path):
    store = Store(tmp_path / "store.db")
    store.put_entry("rules", "good", {"id": "good"})
    store.put_entry("rules", "bad", {"id": "bad"})
    store.put_plugin(PluginRecord("function", "echo", "1.0.0", "plugins/functions/echo.so", "0" * 64, "1.0",
                                  "2024-01-01T00:00:00Z", "loaded", functions=("echo",)))
    store.close()
    db = sqlite3.connect(tmp_path / "store.db")
    db.execute("UPDATE rules SET body = '{not json' WHERE id = 'bad'")
    db.execute("UPDATE plugins SET functions = '[' WHERE name = 'echo'")
    db.commit()
    db.close()
    store = Store(tmp_path / "store.db")
    entries = {e.id: e for e in store.list_entries("rules")}
    assert entries["good"].body == {"id": "good"} and entries["good"].damage == ""
    assert entries["bad"].body == {} and entries["bad"].damage == (
        "the store's row rules/bad is damaged: its body is not valid JSON (Expecting property name enclosed in"
        " double quotes: line 1 column 2 (char 1))")
    assert store.get_entry("rules", "bad").damage == entries["bad"].damage
    (echo,) = store.list_plugins()
    assert (echo.status, echo.functions) == ("failed", ())
    assert echo.error.startswith("the store's row plugins/function/echo is damaged: functions (Expecting value")
    store.close()
