"""A schemaless stream's rule checked against its first rows: a type error stops the rule with
the error as its message, a column that never comes is a warning in the status, and a runtime
error repeated on every batch is logged once per interval."""

from __future__ import annotations

import logging

import pytest

from engine_helpers import Harness
from helpers import wait_for
from plutino.engine import RuleManager
from plutino.engine.adhoc_query import run_query
from plutino.engine.error_log import ErrorLog
from plutino.engine.schema_watch import WATCH_BATCHES


def test_a_type_error_on_the_first_rows_stops_the_rule_with_the_error(h: Harness):
    h.stream("free")
    r = h.rule("r", "SELECT abs(name) AS a FROM free")
    r.feed([{"name": "ann"}])
    wait_for(lambda: r.status()["status"] != "running", "the rule to stop")
    status = r.status()["status"]
    assert status.startswith("stopped: the first rows of schemaless stream free (name string) do not fit the rule: ")
    assert "abs" in status and "declare the stream's fields (CREATE STREAM free (...))" in status


def test_rows_that_fit_keep_the_rule_running(h: Harness):
    h.stream("free")
    r = h.rule("r", "SELECT abs(v) AS a FROM free WHERE missing_sometimes IS NULL")
    r.feed([{"v": -2}])
    assert r.rows() == [{"a": 2}] and r.status()["status"] == "running"


def test_a_column_that_never_appears_is_a_warning_in_the_status(h: Harness):
    h.stream("free")
    r = h.rule("r", "SELECT temprature FROM free")
    for i in range(WATCH_BATCHES):
        assert "warning" not in r.status()
        r.feed([{"temperature": float(i)}])
    r.settle()
    assert r.status()["warning"] == ("column 'temprature' (did you mean 'temperature'?) read by the rule has not "
                                     f"appeared in the first {WATCH_BATCHES} batches of stream free, so it is null; "
                                     "the rows have: temperature")
    assert r.status()["status"] == "running"


def test_a_repeated_error_is_logged_once_per_interval_with_a_count():
    class Clock:
        now = 0.0

        def monotonic(self) -> float:
            return self.now

    clock = Clock()
    records: list[str] = []
    log = logging.getLogger("test.error_log")
    log.addHandler(type("H", (logging.Handler,), {"emit": lambda self, rec: records.append(rec.getMessage())})())
    errors = ErrorLog(log, interval_s=10, clock=clock)
    assert [errors.warning("k", "boom") for _ in range(5)] == [True, False, False, False, False]
    assert errors.warning("other", "bang")
    clock.now = 11
    assert errors.warning("k", "boom")
    assert records == ["boom", "bang", "boom (and 4 more time(s) since it was last logged)"]


def test_a_query_answers_its_errors(manager: RuleManager, registry, broker):
    manager.create_stream('CREATE STREAM free () WITH (TYPE="memory", DATASOURCE="q_in")')
    import threading

    import pyarrow as pa

    def publish() -> None:
        wait_for(lambda: broker.subscribers("q_in") > 0, "the query's source")
        broker.publish("q_in", pa.RecordBatch.from_pylist([{"name": "ann"}]))

    threading.Thread(target=publish, daemon=True).start()
    result = run_query(manager, registry, "SELECT abs(name) AS a FROM free", limit=1, timeout_s=3)
    assert result["rows"] == []
    assert len(result["errors"]) >= 1 and "do not fit the rule" in result["errors"][0]


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, "plutino.engine")


def test_a_column_absent_or_null_in_the_first_rows_is_checked_when_it_comes(h: Harness):
    h.stream("free")
    r = h.rule("r", "SELECT upper(name) AS u FROM free")
    r.feed([{"other": 1}])  # no name yet: nothing to judge upper() by
    r.feed([{"name": None}])  # all null: no type either
    r.feed([{"name": "ann"}])
    assert r.rows()[-1] == {"u": "ANN"} and r.status()["status"] == "running"
    h.stream("free2")
    r2 = h.rule("r2", "SELECT abs(name) AS a FROM free2")
    r2.feed([{"x": 1}])
    r2.feed([{"name": "ann"}])  # the first rows with a type for name: text, which abs() refuses
    wait_for(lambda: r2.status()["status"] != "running", "the rule to stop")
    assert "do not fit the rule" in r2.status()["status"]
