"""Every SQL mistake is refused when the rule is created, with its place and a fix.

The messages are asserted exactly: they are the interface a user reads.
"""

from __future__ import annotations

import pytest

from plutino.engine import RuleManager, SqlError
from plutino.engine.errors import RuleError
from plutino.engine.planner import plan_query
from plutino.engine.plugin_functions import NoPlugins
from plutino.engine.streams import parse_create_stream

STREAMS = {
    "demo": parse_create_stream(
        "CREATE STREAM demo (temperature FLOAT, humidity BIGINT, name STRING, st STRUCT(a BIGINT, b STRING), "
        'arr ARRAY(BIGINT), ts BIGINT) WITH (TYPE="memory", DATASOURCE="t")'
    ),
    "free": parse_create_stream('CREATE STREAM free () WITH (TYPE="memory")'),
}


@pytest.mark.parametrize(
    "sql, message",
    [
        (
            "SELECT temprature FROM demo",
            "unknown column 'temprature' in SELECT at line 1, col 8; did you mean 'temperature'? (stream "
            "demo has columns: arr, humidity, name, st, temperature, ts)",
        ),
        (
            "SELECT ech(name) FROM demo",
            "unknown function 'ech' at line 1, col 8; no built-in or installed plugin has it; install the "
            "plugin that provides it (built-in and plugin functions: see GET /plugins/udfs)",
        ),
        (
            "SELECT zzzzzz(name) FROM demo",
            "unknown function 'zzzzzz' at line 1, col 8; no built-in or installed plugin has it; install "
            "the plugin that provides it (built-in and plugin functions: see GET /plugins/udfs)",
        ),
        (
            "SELECT upper(name, 1) FROM demo",
            "function 'upper' takes 1 argument, got 2 at line 1, col 8; write upper(s)",
        ),
        (
            "SELECT concat() FROM demo",
            "function 'concat' takes at least 1 argument, got 0 at line 1, col 8; write concat(s1, s2, ...)",
        ),
        (
            "SELECT round(temperature, 1, 2) FROM demo",
            "function 'round' takes 1 to 2 arguments, got 3 at line 1, col 8; write round(x[, digits])",
        ),
        (
            "SELECT name + 1 FROM demo",
            "cannot apply '+' to string and bigint at line 1, col 8; cast a value to a matching type, e.g. "
            'cast(x, "float")',
        ),
        (
            "SELECT abs(name) FROM demo",
            "cannot apply abs() to string at line 1, col 8; write abs(x); cast a value to a matching type, "
            'e.g. cast(x, "float")',
        ),
        (
            "SELECT * FROM demo WHERE name > 3",
            "cannot apply '>' to string and bigint at line 1, col 26; cast a value to a matching type, e.g. "
            'cast(x, "float")',
        ),
        (
            "SELECT count(*) FROM demo",
            "aggregate functions need a window at line 1, col 8; add one to GROUP BY, e.g. GROUP BY "
            "TUMBLINGWINDOW(ss, 10)",
        ),
        (
            "SELECT * FROM demo GROUP BY humidity",
            "GROUP BY needs a window at line 1, col 29; add one to GROUP BY, e.g. GROUP BY TUMBLINGWINDOW(ss, 10)",
        ),
        (
            "SELECT * FROM demo WHERE sum(humidity) > 1",
            "aggregate function 'sum' cannot be used in WHERE at line 1, col 26; filter groups with HAVING instead",
        ),
        ("SELECT st.c FROM demo", "struct 'st' has no field 'c' at line 1, col 8; its fields: a, b"),
        (
            "SELECT humidity.x FROM demo",
            "'humidity' is bigint, not a struct, so it has no field 'x' at line 1, col 8; nested access "
            "(a.b) works on struct columns",
        ),
        (
            "SELECT cast(name, 'int') FROM demo",
            "cast() cannot make 'int' at line 1, col 19; did you mean 'bigint'? types: bigint, float, "
            "string, datetime, boolean, bytea",
        ),
        (
            "SELECT a FROM dem",
            "unknown stream 'dem' at line 1, col 15; did you mean 'demo'? create it with CREATE STREAM dem "
            "(...) WITH (...) (streams: demo, free)",
        ),
        (
            "SELECT * FROM demo WHERE name",
            "WHERE must be a condition, got a string value at line 1, col 26; compare it, e.g. WHERE temperature > 20",
        ),
        (
            "SELECT * FROM demo GROUP BY TUMBLINGWINDOW(sx, 10)",
            "unknown time unit 'sx' in TUMBLINGWINDOW() at line 1, col 44; use one of DD, HH, MI, SS, MS; "
            "write TUMBLINGWINDOW(ss, 10)",
        ),
        (
            "SELECT * FROM demo GROUP BY TUMBLINGWINDOW(ss, 0)",
            "the size of TUMBLINGWINDOW() must be a whole number > 0, got '0' at line 1, col 48; write "
            "TUMBLINGWINDOW(ss, 10)",
        ),
        (
            "SELECT * FROM demo GROUP BY TUMBLINGWINDOW(ss)",
            "TUMBLINGWINDOW() takes 2 arguments, got 1 at line 1, col 29; write TUMBLINGWINDOW(ss, 10)",
        ),
        (
            "SELECT * FROM demo GROUP BY HOPPINGWINDOW(ss, 10)",
            "HOPPINGWINDOW() takes 3 arguments, got 2 at line 1, col 29; write HOPPINGWINDOW(ss, 10, 5)",
        ),
        (
            "SELECT * FROM demo GROUP BY SLIDINGWINDOW(ss, 10, 5)",
            "the delay argument of SLIDINGWINDOW() is not supported at line 1, col 51; write SLIDINGWINDOW(ss, 10)",
        ),
        (
            "SELECT * FROM demo GROUP BY COUNTWINDOW(2, 3)",
            "the hop of COUNTWINDOW() (3) is larger than its size (2) at line 1, col 44; a count window is "
            "emitted every hop rows with the last size rows; use hop <= size",
        ),
        (
            "SELECT * FROM demo GROUP BY TUMBLINGWINDOW(ss, 1), COUNTWINDOW(2)",
            "GROUP BY has two windows at line 1, col 52; keep one window function",
        ),
        (
            "SELECT * FROM demo GROUP BY abs(TUMBLINGWINDOW(ss, 1))",
            "TUMBLINGWINDOW() must stand alone in GROUP BY at line 1, col 33; write GROUP BY key, "
            "TUMBLINGWINDOW(ss, 10)",
        ),
        (
            "SELECT substring(name, humidity) FROM demo",
            "argument 2 of substring() must be a constant at line 1, col 24; write substring(s, start[, end])",
        ),
        (
            "SELECT temperature AS t FROM demo WHERE t > 1",
            "unknown column 't' in WHERE at line 1, col 41; 't' is an alias of SELECT, which WHERE cannot "
            "use; repeat the expression (stream demo has columns: arr, humidity, name, st, temperature, ts)",
        ),
        (
            "SELECT temperature AS t, humidity AS t FROM demo",
            "two SELECT fields are named 't' at line 1, col 26; give one of them another name: humidity AS t_2",
        ),
        (
            "SELECT abs(temperature), abs(humidity) FROM demo",
            "two SELECT fields are named 'abs' at line 1, col 26; give one of them another name: "
            "ABS(humidity) AS abs_2",
        ),
        (
            "SELECT CASE WHEN humidity > 0 THEN 1 ELSE 'a' END FROM demo",
            "the branches of CASE have different types (bigint, string) at line 1, col 18; cast them to one "
            'type with cast(x, "string")',
        ),
        (
            "SELECT CASE WHEN humidity THEN 1 END FROM demo",
            "a WHEN condition is bigint, not boolean at line 1, col 18; write a comparison, e.g. WHEN a > 1",
        ),
        (
            "SELECT count(sum(humidity)) FROM demo GROUP BY TUMBLINGWINDOW(ss, 1)",
            "aggregate function 'sum' cannot be nested in count() at line 1, col 14; aggregate the plain values",
        ),
        (
            "SELECT sum(*) FROM demo GROUP BY TUMBLINGWINDOW(ss, 1)",
            "sum(*) is not allowed at line 1, col 8; only count(*) takes '*'; write sum(x)",
        ),
        (
            "SELECT count(DISTINCT humidity) FROM demo GROUP BY TUMBLINGWINDOW(ss, 1)",
            "count(DISTINCT ...) is not supported at line 1, col 8; aggregate the values without DISTINCT",
        ),
        (
            "SELECT sum(name) FROM demo GROUP BY TUMBLINGWINDOW(ss, 1)",
            'sum() cannot aggregate string values at line 1, col 8; cast the argument, e.g. sum(cast(x, "float"))',
        ),
        (
            "SELECT tumblingwindow(ss, 1) FROM demo",
            "TUMBLINGWINDOW() can only be used in GROUP BY at line 1, col 8; write GROUP BY TUMBLINGWINDOW(...)",
        ),
        (
            "SELECT window_start() FROM demo",
            "window_start() needs a window at line 1, col 8; add one to GROUP BY, e.g. GROUP BY TUMBLINGWINDOW(ss, 10)",
        ),
        (
            "SELECT * FROM demo HAVING humidity > 1",
            "HAVING needs GROUP BY with a window at line 1, col 27; filter rows with WHERE instead",
        ),
        (
            "SELECT count(*) FROM demo GROUP BY TUMBLINGWINDOW(ss, 1) HAVING name",
            "HAVING must be a condition, got a string value at line 1, col 65; compare it, e.g. HAVING count(*) > 2",
        ),
        (
            "SELECT DISTINCT name FROM demo",
            "SELECT DISTINCT is not supported at line 1, col 17; group by the columns with a window instead",
        ),
        (
            "SELECT * FROM demo JOIN free ON demo.name = free.name",
            "a JOIN of two streams (demo, free) needs a window at line 1, col 25; add one: GROUP BY "
            "TUMBLINGWINDOW(ss, 10)",
        ),
        ("SELECT 1", "the SELECT has no FROM at line 1, col 8; name the stream: SELECT ... FROM demo"),
        (
            "SELECT name FROM demo WHERE name LIKE humidity",
            'the pattern of LIKE must be a string constant at line 1, col 39; write s LIKE "abc%"',
        ),
        (
            "SELECT arr[name] FROM demo",
            "the index in 'arr[name]' must be a whole-number constant at line 1, col 8; write arr[0] (0-based)",
        ),
        (
            "SELECT name[0] FROM demo",
            "'name' is string, not an array at line 1, col 8; indexing (x[0]) works on array columns",
        ),
        (
            "SELECT humidity IN ('a', 'b') FROM demo",
            "the IN list does not match bigint values at line 1, col 8; Failed to parse string: 'b' as a "
            "scalar of type int64; list values of the column's type",
        ),
        (
            "SELECT json_path_query(st, 'a.b') FROM demo",
            "bad JSON path in json_path_query() at line 1, col 28; a JSON path starts with '$', got 'a.b'",
        ),
        ("SELECT * FROM demo LIMIT x", "LIMIT must be a whole number, got 'x' at line 1, col 26; write LIMIT 10"),
        (
            "SELECT *, humidity FROM demo WHERE",
            "cannot parse the SQL: 'WHERE' is incomplete at line 1, col 30; complete the expression after it",
        ),
        ("SELECT 1 / 0 FROM demo", "cannot compute '/' of bigint and bigint at line 1, col 8; divide by zero"),
        (
            "SELECT regexp_matches(name, '(') FROM demo",
            "cannot compute regexp_matches() of string and string at line 1, col 8; Invalid regular "
            "expression: missing ): (; write regexp_matches(s, regex)",
        ),
        (
            "SELECT count(*) FROM demo GROUP BY count(*), TUMBLINGWINDOW(ss, 1)",
            "aggregate function 'count' cannot be used in GROUP BY at line 1, col 36; group by columns or "
            "expressions of columns",
        ),
        (
            "SELECT * FROM demo GROUP BY SESSIONWINDOW(ss, 10)",
            "SESSIONWINDOW() takes 3 arguments, got 2 at line 1, col 29; write SESSIONWINDOW(mi, 2, 1) "
            "(unit, maximum duration, timeout)",
        ),
    ],
)
def test_sql_error_message(sql, message):
    with pytest.raises(SqlError) as err:
        plan_query(sql, STREAMS, NoPlugins())
    assert str(err.value) == message


@pytest.mark.parametrize(
    "sql, message",
    [
        ("SELECT a FROM", "the SQL ends too early: expected table name at line 1, col 13; complete the statement"),
        (
            "SELECT (a FROM demo",
            "cannot parse the SQL: expecting ) near 'FROM' at line 1, col 11; check the syntax around that place",
        ),
        (
            "SELEC a FROM demo",
            "a rule's SQL must be a SELECT, got 'SELEC' at line 1, col 1; write a query such as SELECT * FROM demo",
        ),
        (
            "SELECT a FROM demo; SELECT 1",
            "a rule runs one statement, got more than one at line 1, col 21; remove the ';' and what follows, "
            "or make a rule for each query",
        ),
        (
            'CREATE STREAM x () WITH (TYPE="memory")',
            "a rule's SQL must be a SELECT, got 'CREATE' at line 1, col 1; stream statements (CREATE STREAM "
            "...) go to POST /streams",
        ),
        ("", "the SQL is empty; write a query such as SELECT * FROM demo"),
        (
            "SELECT 'abc FROM demo",
            "cannot read the SQL (Error tokenizing 'SELECT 'abc FROM dem'); check that every quote and "
            "bracket is closed",
        ),
        (
            "SELECT a FROM demo WHERE a >",
            "cannot parse the SQL: '>' is incomplete at line 1, col 28; complete the expression after it",
        ),
        (
            "SELECT humidity\nFROM demo\nWHERE  humidty > 1",
            "unknown column 'humidty' in WHERE at line 3, col 8; did you mean 'humidity'? "
            "(stream demo has columns: arr, humidity, name, st, temperature, ts)",
        ),
    ],
)
def test_syntax_errors_point_at_the_place(sql, message):
    with pytest.raises(SqlError) as err:
        plan_query(sql, STREAMS, NoPlugins())
    assert str(err.value) == message


def test_sql_error_carries_structured_fields():
    with pytest.raises(SqlError) as err:
        plan_query("SELECT\n  ech(name) FROM demo", STREAMS, NoPlugins())
    e = err.value
    assert (e.problem, e.line, e.col) == ("unknown function 'ech'", 2, 3)
    assert e.hint.startswith("no built-in or installed plugin has it")


def test_schemaless_stream_accepts_any_column_and_checks_functions():
    plan = plan_query("SELECT whatever, a.b.c, upper(name) FROM free WHERE x > 1", STREAMS, NoPlugins())
    assert [f.name for f in plan.fields] == ["whatever", "c", "upper"]
    assert plan.fields[0].expr.type is None
    with pytest.raises(SqlError) as err:
        plan_query("SELECT uper(name) FROM free", STREAMS, NoPlugins())
    assert str(err.value) == (
        "unknown function 'uper' at line 1, col 8; did you mean 'upper'? "
        "(built-in and plugin functions: see GET /plugins/udfs)"
    )


def test_a_rule_with_bad_sql_is_not_created(manager: RuleManager):
    manager.create_stream('CREATE STREAM demo (a BIGINT) WITH (TYPE="memory", DATASOURCE="x")')
    with pytest.raises(SqlError) as err:
        manager.create_rule({"id": "r1", "sql": "SELECT ech(a) FROM demo", "actions": [{"log": {}}]})
    assert str(err.value) == (
        "unknown function 'ech' at line 1, col 8; no built-in or installed plugin has it; "
        "install the plugin that provides it (built-in and plugin functions: see GET /plugins/udfs)"
    )
    assert manager.list_rules() == []


@pytest.mark.parametrize(
    "body, message",
    [
        (
            {"id": "r 1", "sql": "SELECT * FROM demo", "actions": [{"log": {}}]},
            "rule id 'r 1' is not valid: use 1 to 128 letters, digits, '-' or '_'",
        ),
        (
            {"id": "r1", "actions": [{"log": {}}]},
            'rule \'r1\' has no sql; give the query, e.g. "sql": "SELECT * FROM demo"',
        ),
        (
            {"id": "r1", "sql": "SELECT * FROM demo"},
            'rule \'r1\' has no actions; give a list of sinks, e.g. "actions": [{"log": {}}]',
        ),
        (
            {"id": "r1", "sql": "SELECT * FROM demo", "actions": [{"log": {}, "memory": {}}]},
            'rule \'r1\': action 0 must be an object with one sink name as its key, e.g. "actions": [{"log": {}}]; '
            "got {'log': {}, 'memory': {}}",
        ),
        (
            {"id": "r1", "sql": "SELECT * FROM demo", "actions": [{"lgo": {}}]},
            "rule 'r1': action 0 uses sink 'lgo', which is not installed; did you mean 'log'? sinks: log, memory",
        ),
        (
            {"id": "r1", "sql": "SELECT * FROM demo", "actions": [{"log": {}}], "options": {"isEventTme": True}},
            "rule 'r1': unknown option 'isEventTme'; did you mean 'isEventTime'? options: isEventTime, lateTolerance, "
            "bufferLength, triggered, drainTimeout, isolation, pluginTimeout, windowMaxRows, windowMaxBytes, sendError",
        ),
        (
            {"id": "r1", "sql": "SELECT * FROM demo", "actions": [{"log": {}}], "options": {"bufferLength": 0}},
            "rule 'r1': bufferLength must be a whole number from 1 to 100000 (batches), got 0",
        ),
        (
            {"id": "r1", "sql": "SELECT * FROM demo", "actions": [{"log": {}}], "options": {"isEventTime": "yes"}},
            "rule 'r1': option isEventTime must be true or false, got 'yes'",
        ),
        (
            {"id": "r1", "sql": "SELECT * FROM demo", "action": [{"log": {}}]},
            "unknown rule field 'action'; did you mean 'actions'? a rule has id, sql, actions and options",
        ),
        (
            {"id": "r1", "sql": "SELECT * FROM demo", "actions": [{"memory": {}}]},
            "rule 'r1': sink 'memory' (action 0) refused its configuration: memory sink: property 'topic' is missing; "
            'write {"memory": {"topic": "result"}}',
        ),
        (
            {"id": "r1", "sql": "SELECT * FROM demo", "actions": [{"log": {"levle": "info"}}]},
            "rule 'r1': sink 'log' (action 0) refused its configuration: log sink: unknown property 'levle'; did you "
            'mean \'level\'? its properties are level, e.g. {"log": {"level": "info"}}',
        ),
        (
            {
                "id": "r1",
                "sql": "SELECT count(*) FROM demo GROUP BY TUMBLINGWINDOW(ss, 1)",
                "actions": [{"log": {}}],
                "options": {"isEventTime": True},
            },
            "rule 'r1' sets isEventTime, but stream 'demo' has no TIMESTAMP field; add TIMESTAMP=\"<field>\" to its "
            "WITH (...) or drop the option",
        ),
    ],
)
def test_rule_definition_errors(manager: RuleManager, body, message):
    manager.create_stream('CREATE STREAM demo (a BIGINT) WITH (TYPE="memory", DATASOURCE="x")')
    with pytest.raises(RuleError) as err:
        manager.create_rule(body)
    assert str(err.value) == message
    assert manager.list_rules() == []
