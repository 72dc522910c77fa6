"""plutino.Engine: the engine in a script, with the same SQL and plugins as the server."""

from __future__ import annotations

import pyarrow as pa
import pytest

import plutino
from plutino.engine import SqlError
from plutino.errors import PluginCallError


@pytest.fixture
def engine(plugin_build):
    with plutino.Engine(plugins=[plugin_build / "functions" / "fastmath.so",
                                 plugin_build / "functions" / "accumulateWordCount.so"]) as e:
        yield e


def test_a_query_runs_a_native_function_over_a_table(engine):
    table = pa.table({"t": [1.0, 5.0, None, 7.0]})
    out = engine.query("SELECT t, mul2add1(t) AS t2 FROM s WHERE t > 3", table)
    assert out.to_pylist() == [{"t": 5.0, "t2": 11.0}, {"t": 7.0, "t2": 15.0}]


def test_a_native_aggregate_runs_per_group_of_a_count_window(engine):
    batch = pa.record_batch({"k": ["a", "b", "a", "b"], "text": ["x y", "z", "p q r", None]})
    out = engine.query("SELECT k, accumulateWordCount(text, ' ') AS words FROM s GROUP BY k, COUNTWINDOW(4)",
                       batch)
    assert sorted(out.to_pylist(), key=lambda r: r["k"]) == [{"k": "a", "words": 5}, {"k": "b", "words": 1}]


def test_bad_sql_is_a_sql_error_naming_the_function(engine):
    with pytest.raises(SqlError, match="unknown function 'mul2add'"):
        engine.query("SELECT mul2add(t) FROM s", pa.table({"t": [1.0]}))


def test_a_plugin_failure_reaches_the_script_as_the_plugins_own_error(engine):
    with pytest.raises(PluginCallError, match="accumulateWordCount"):
        engine.query("SELECT accumulateWordCount(text, '') AS w FROM s GROUP BY COUNTWINDOW(1)",
                     pa.table({"text": ["a b"]}))


def test_the_schema_of_the_data_in_hand_checks_the_sql_before_any_row_runs(engine):
    # a table or batch declares its columns: the plugin's validate() and the column names are
    # checked when the query is planned, as for a rule on a typed stream
    with pytest.raises(SqlError, match="function 'mul2add1' does not accept"):
        engine.query("SELECT mul2add1(t) AS f FROM s", pa.table({"t": ["not a number"]}))
    with pytest.raises(SqlError, match="temprature"):
        engine.query("SELECT temprature FROM s", pa.table({"temperature": [1.0]}))
    # an iterable of batches is still read as a schemaless stream, typed by its first batch
    rows = engine.query("SELECT mul2add1(t) AS f FROM s", iter([pa.record_batch({"t": [1.0]})])).to_pylist()
    assert rows == [{"f": 3.0}]
