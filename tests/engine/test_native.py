"""Rules using real native plugins, built from native_plugins/ and loaded through the loader:
fastmath (scalar), accumulateWordCount (aggregate), the random source and the file sink."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from engine_helpers import T0, Harness
from helpers import wait_for
from plutino.engine import RuleManager, SqlError
from plutino.engine.plugin_config import YamlConfigResolver
from plutino.engine.query import query
from plutino.native.loader import load_plugin


@pytest.fixture
def fastmath(registry, native_functions):
    registry.register(native_functions["fastmath"])
    return native_functions["fastmath"]


@pytest.fixture
def word_count(registry, native_functions):
    registry.register(native_functions["accumulateWordCount"])
    return native_functions["accumulateWordCount"]


def test_native_scalar_function_in_select_with_where(h: Harness, fastmath):
    h.stream("demo", "temperature FLOAT, name STRING")
    r = h.rule("r1", "SELECT mul2add1(temperature) AS t2, name FROM demo WHERE temperature > 3")
    r.feed(
        [
            {"temperature": 1.0, "name": "a"},
            {"temperature": 4.0, "name": "b"},
            {"temperature": None, "name": "c"},
            {"temperature": 10.5, "name": "d"},
        ]
    )
    assert r.rows() == [{"t2": 9.0, "name": "b"}, {"t2": 22.0, "name": "d"}]


def test_a_native_function_is_called_once_per_batch_not_per_row(h: Harness, fastmath):
    h.stream("demo", "temperature FLOAT")
    r = h.rule("r1", "SELECT mul2add1(temperature) AS t2 FROM demo")
    for b in range(3):
        r.feed([{"temperature": float(i)} for i in range(b * 1000, (b + 1) * 1000)])
    rows = r.rows()
    assert len(rows) == 3000 and rows[1234] == {"t2": 2469.0}
    status = r.status()
    assert status["function_mul2add1_0_calls_total"] == 3
    assert status["function_mul2add1_0_plugin"] == "fastmath"


def test_a_constant_argument_reaches_the_plugin_as_one_row(h: Harness, fastmath):
    h.stream("demo", "temperature FLOAT")
    r = h.rule("r1", "SELECT mul2add1(2) AS k, mul2add1(temperature) AS t FROM demo")
    r.feed([{"temperature": 1.0}, {"temperature": 2.0}])
    assert r.rows() == [{"k": 5.0, "t": 3.0}, {"k": 5.0, "t": 5.0}]


def test_native_validate_refuses_a_wrong_type_as_a_sql_error(h: Harness, fastmath, manager: RuleManager):
    h.stream("demo", "name STRING")
    with pytest.raises(SqlError) as err:
        manager.create_rule({"id": "r1", "sql": "SELECT mul2add1(name) FROM demo", "actions": [{"log": {}}]})
    assert str(err.value) == (
        "function 'mul2add1' does not accept (string) at line 1, col 8; plugin 'fastmath': function 'mul2add1' "
        "validate failed (PLUTINO_INVALID): mul2add1: the argument must be a float64 or int64, got Arrow type 'u'; "
        "cast it, e.g. mul2add1(CAST(x AS FLOAT))"
    )
    # and the cast the plugin suggests works
    manager.create_rule(
        {"id": "r2", "sql": "SELECT mul2add1(CAST(name AS FLOAT)) AS v FROM demo", "actions": [{"log": {}}]}
    )


def test_native_function_names_are_case_insensitive_and_misspellings_get_a_suggestion(
    h: Harness, fastmath, manager: RuleManager
):
    h.stream("demo", "t FLOAT")
    manager.validate_rule({"id": "r1", "sql": "SELECT MUL2ADD1(t) FROM demo", "actions": [{"log": {}}]})
    with pytest.raises(SqlError) as err:
        manager.validate_rule({"id": "r1", "sql": "SELECT mul2ad1(t) FROM demo", "actions": [{"log": {}}]})
    assert str(err.value) == (
        "unknown function 'mul2ad1' at line 1, col 8; did you mean 'mul2add1'? "
        "(built-in and plugin functions: see GET /plugins/udfs)"
    )


def test_native_aggregate_in_a_window_with_groups(h: Harness, word_count):
    h.stream("docs", "line STRING, k STRING")
    r = h.rule(
        "r1",
        "SELECT k, accumulateWordCount(line, ' ') AS words FROM docs GROUP BY k, TUMBLINGWINDOW(ss, 10) ORDER BY k",
    )
    r.feed([{"line": "a b c", "k": "x"}, {"line": "d e", "k": "y"}, {"line": None, "k": "x"}])
    r.feed([{"line": " f  g ", "k": "x"}])
    r.tick(T0 + 10_000)
    assert r.take() == [[{"k": "x", "words": 5}, {"k": "y", "words": 2}]]
    assert r.status()["function_accumulateWordCount_0_calls_total"] == 1  # once per window
    r.feed([{"line": "one", "k": "z"}])
    r.tick(T0 + 20_000)
    assert r.take() == [[{"k": "z", "words": 1}]]


def test_native_aggregate_refuses_a_non_string_argument(h: Harness, word_count, manager: RuleManager):
    h.stream("docs", "n BIGINT")
    with pytest.raises(SqlError) as err:
        manager.create_rule(
            {
                "id": "r1",
                "sql": "SELECT accumulateWordCount(n, ' ') FROM docs GROUP BY COUNTWINDOW(2)",
                "actions": [{"log": {}}],
            }
        )
    assert str(err.value).startswith(
        "function 'accumulateWordCount' does not accept (bigint, string) at line 1, col 8; "
    )
    with pytest.raises(SqlError) as err:
        manager.create_rule(
            {
                "id": "r1",
                "sql": "SELECT accumulateWordCount(cast(n, 'string'), ' ') FROM docs",
                "actions": [{"log": {}}],
            }
        )
    assert str(err.value) == (
        "aggregate functions need a window at line 1, col 8; add one to GROUP BY, e.g. GROUP BY TUMBLINGWINDOW(ss, 10)"
    )


def test_a_native_function_failing_mid_batch_drops_that_row_only(h: Harness, registry, plugin_build: Path):
    registry.register(load_plugin(plugin_build / "broken" / "function_error_mid_batch.so", kind="function"))
    h.stream("demo", "x FLOAT")
    r = h.rule("r1", "SELECT checked_half(x) AS h FROM demo")
    r.feed([{"x": 4.0}, {"x": -1.0}])
    r.feed([{"x": 8.0}])
    assert r.rows() == [{"h": 2.0}, {"h": 4.0}]
    status = r.status()
    assert status["status"] == "running"
    assert status["op_1_project_0_exceptions_total"] == 1
    assert status["op_1_project_0_last_exception"] == (
        "field 'h': plugin 'function_error_mid_batch': function 'checked_half' call failed (PLUTINO_INVALID): "
        "checked_half: row 0 holds -1; only values >= 0 are allowed"  # row 0 of the half that failed
    )
    assert status["function_checked_half_0_exceptions_total"] == 2  # the batch's call, then its half's


def test_query_api_runs_native_functions_without_threads(registry, fastmath, word_count):
    batch = pa.RecordBatch.from_pydict({"t": [1.0, 5.0, 7.0], "line": ["a b", "c", "d e f"]})
    assert query("SELECT mul2add1(t) AS t2 FROM s WHERE t > 3", [batch], registry=registry).to_pylist() == [
        {"t2": 11.0},
        {"t2": 15.0},
    ]
    assert query(
        "SELECT accumulateWordCount(line, ' ') AS w FROM s GROUP BY COUNTWINDOW(3)", [batch], registry=registry
    ).to_pylist() == [{"w": 6}]


def test_native_random_source_to_native_file_sink_end_to_end(
    tmp_path: Path, plugin_build: Path, registry, fastmath, clock
):
    registry.register(load_plugin(plugin_build / "sources" / "random.so", kind="source"))
    registry.register(load_plugin(plugin_build / "sinks" / "file.so", kind="sink"))
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "random.yaml").write_text(
        "default:\n  interval: 1000\n"
        "test:\n  interval: 0\n  seed: 7\n  batch_size: 10\n  count: 50\n"
        "  pattern:\n    count: 50\n    temperature: 30.0\n"
    )
    config = YamlConfigResolver({"source": [etc], "sink": [plugin_build / "sinks"]})
    manager = RuleManager(registry, clock=clock, config_for=config)
    out = tmp_path / "out.jsonl"
    try:
        manager.create_stream('CREATE STREAM demo () WITH (TYPE="random", CONF_KEY="test")')
        manager.create_rule(
            {
                "id": "r1",
                "sql": "SELECT count, temperature, mul2add1(temperature) AS t2 FROM demo WHERE count > 10",
                "actions": [{"file": {"path": str(out)}}],
            }
        )
        wait_for(lambda: manager.rule_status("r1")["status"] == "stopped: end of stream", "the bounded source to end")
        status = manager.rule_status("r1")
    finally:
        manager.shutdown()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert status["source_demo_0_records_in_total"] == 50
    assert status["function_mul2add1_0_calls_total"] == 5  # 5 batches of 10 rows
    assert len(rows) == status["op_1_filter_0_records_out_total"] == status["sink_file_0_0_rows_out_total"] > 0
    assert all(r["count"] > 10 and r["t2"] == pytest.approx(r["temperature"] * 2 + 1) for r in rows)
    assert set(rows[0]) == {"count", "temperature", "t2"}


def test_yaml_config_errors_name_the_section(tmp_path: Path, registry, clock, plugin_build: Path):
    registry.register(load_plugin(plugin_build / "sources" / "random.so", kind="source"))
    config = YamlConfigResolver({"source": [plugin_build / "sources"]})
    manager = RuleManager(registry, clock=clock, config_for=config)
    manager.create_stream('CREATE STREAM demo () WITH (TYPE="random", CONF_KEY="nosuch")')
    with pytest.raises(Exception) as err:
        manager.create_rule({"id": "r1", "sql": "SELECT * FROM demo", "actions": [{"log": {}}]})
    assert str(err.value) == (
        f"source 'random': CONF_KEY=\"nosuch\" is not a section of "
        f"{plugin_build / 'sources' / 'random.yaml'}; its sections: default, ext"
    )
