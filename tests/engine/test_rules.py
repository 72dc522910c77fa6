"""Rules at run time: life cycle, status metrics, plugin failures, backpressure, end of stream."""

from __future__ import annotations

import threading
import time
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from engine_helpers import T0, Harness
from helpers import wait_for
from plutino.engine import RuleManager
from plutino.engine.errors import NotFoundError, RuleError, SqlError
from plutino.errors import RegistryError
from plutino_contract.protocols import Context

# -- a Python function library, registered like a native one ---------------------------------


FLOAT64 = pa.float64()


class Fn:
    def __init__(
        self,
        name: str,
        impl: Any,
        aggregate: bool = False,
        min_args: int = 1,
        max_args: int = 1,
        result: pa.DataType | None = FLOAT64,
        accepts: tuple = (),
    ) -> None:
        self.name, self.impl, self.aggregate = name, impl, aggregate
        self.min_args, self.max_args, self.result, self.accepts = min_args, max_args, result, accepts
        self.seen_types: list[list] = []

    def validate(self, arg_types: Sequence[Any]) -> pa.DataType | None:
        self.seen_types.append(list(arg_types))
        types = [t.type if isinstance(t, pa.Field) else t for t in arg_types]
        if self.accepts and types[0] not in self.accepts:
            raise ValueError(f"{self.name} needs a number, got {types[0]}")
        return self.result

    def create(self, context: Context) -> "Instance":
        return Instance(self)


class Instance:
    def __init__(self, fn: Fn) -> None:
        self.fn = fn
        self.closed = False

    def call(self, args: Sequence[pa.Array], length: int) -> pa.Array:
        return self.fn.impl(args, length)

    def aggregate(self, args: Sequence[pa.Array], length: int, group_ids: pa.Array | None, ngroups: int) -> pa.Array:
        return self.fn.impl(args, length, group_ids, ngroups)

    def close(self) -> None:
        self.closed = True


def _half(args: Sequence[pa.Array], length: int) -> pa.Array:
    x = args[0]
    if pc.any(pc.less(x, 0)).as_py():
        raise ValueError("half: negative values are not allowed")
    return pc.divide(pc.cast(x, pa.float64()), 2.0)


def _span(args: Sequence[pa.Array], length: int, group_ids: pa.Array | None, ngroups: int) -> pa.Array:
    table = pa.table({"g": group_ids if group_ids is not None else pa.array([0] * length, pa.int32()), "x": args[0]})
    out = table.group_by("g", use_threads=False).aggregate([("x", "min"), ("x", "max")]).sort_by("g")
    return pc.subtract(out.column("x_max"), out.column("x_min")).combine_chunks().cast(pa.float64())


class Library:
    name = "pyfuncs"
    version = "1.0.0"
    kind = "function"

    def __init__(self) -> None:
        self.functions = [Fn("half", _half, accepts=(pa.int64(), pa.float64())), Fn("span", _span, aggregate=True)]


@pytest.fixture
def lib(registry) -> Library:
    library = Library()
    registry.register(library)
    return library


# -- life cycle -------------------------------------------------------------------------------


def test_rule_runs_filter_and_projection_end_to_end(h: Harness):
    h.stream("demo", "temperature FLOAT, humidity BIGINT")
    r = h.rule("r1", "SELECT temperature * 2 AS t2, humidity FROM demo WHERE temperature > 3")
    r.feed([{"temperature": 1.0, "humidity": 1}, {"temperature": 5.0, "humidity": 2}])
    assert r.take() == [[{"t2": 10.0, "humidity": 2}]]


def test_status_has_metrics_per_operator_like_ekuiper(h: Harness):
    h.stream("demo", "temperature FLOAT, humidity BIGINT")
    r = h.rule("r1", "SELECT humidity FROM demo WHERE temperature > 3")
    r.feed(
        [{"temperature": 1.0, "humidity": 1}, {"temperature": 5.0, "humidity": 2}, {"temperature": 9.0, "humidity": 3}]
    )
    r.settle()
    status = r.status()
    assert status["status"] == "running"
    counts = {
        k: v for k, v in status.items() if k.endswith(("_records_in_total", "_records_out_total", "_exceptions_total"))
    }
    assert counts == {
        "source_demo_0_records_in_total": 3,
        "source_demo_0_records_out_total": 3,
        "source_demo_0_exceptions_total": 0,
        "op_1_filter_0_records_in_total": 3,
        "op_1_filter_0_records_out_total": 2,
        "op_1_filter_0_exceptions_total": 0,
        "op_2_project_0_records_in_total": 2,
        "op_2_project_0_records_out_total": 2,
        "op_2_project_0_exceptions_total": 0,
        "sink_memory_0_0_records_in_total": 1,  # a sink counts messages, as eKuiper's: one batch
        "sink_memory_0_0_records_out_total": 1,
        "sink_memory_0_0_exceptions_total": 0,
    }
    assert status["sink_memory_0_0_rows_in_total"] == status["sink_memory_0_0_rows_out_total"] == 2
    for node in ("source_demo_0", "op_1_filter_0", "op_2_project_0", "sink_memory_0_0"):
        for metric in (
            "process_latency_us",
            "buffer_length",
            "last_invocation",
            "last_exception",
            "last_exception_time",
        ):
            assert f"{node}_{metric}" in status
        assert status[f"{node}_last_invocation"] > 0
    assert status["source_demo_0_connection_status"] == status["sink_memory_0_0_connection_status"] == 1
    assert status["source_demo_0_connection_state"] == status["sink_memory_0_0_connection_state"] == "connected"


def test_stop_start_restart_and_delete(h: Harness, manager: RuleManager):
    h.stream("demo", "v BIGINT")
    r = h.rule("r1", "SELECT v FROM demo")
    assert manager.list_rules() == [{"id": "r1", "status": "running"}]
    manager.stop_rule("r1")
    assert manager.rule_status("r1")["status"] == "stopped: canceled manually"
    manager.start_rule("r1")
    assert manager.rule_status("r1")["status"] == "running"
    r.feed([{"v": 1}])
    assert r.rows() == [{"v": 1}]
    manager.restart_rule("r1")
    assert manager.rule_status("r1")["status"] == "running"
    assert manager.rule_status("r1")["source_demo_0_records_in_total"] == 0  # a restart starts counting anew
    r.feed([{"v": 2}])
    assert r.rows() == [{"v": 2}]
    manager.delete_rule("r1")
    assert manager.list_rules() == []
    with pytest.raises(NotFoundError) as err:
        manager.rule_status("r1")
    assert str(err.value) == "rule 'r1' not found; existing rules: none"


def test_a_rule_created_untriggered_waits_for_start(h: Harness, manager: RuleManager):
    h.stream("demo", "v BIGINT")
    manager.create_rule({"id": "r1", "sql": "SELECT v FROM demo", "actions": [{"log": {}}], "triggered": False})
    assert manager.rule_status("r1") == {"status": "stopped"}
    assert manager.describe_rule("r1") == {
        "id": "r1",
        "sql": "SELECT v FROM demo",
        "actions": [{"log": {}}],
        "triggered": False,
    }


def test_duplicate_rule_id_is_refused(h: Harness, manager: RuleManager):
    h.stream("demo", "v BIGINT")
    h.rule("r1", "SELECT v FROM demo")
    with pytest.raises(Exception) as err:
        manager.create_rule({"id": "r1", "sql": "SELECT v FROM demo", "actions": [{"log": {}}]})
    assert str(err.value) == (
        "rule 'r1' already exists; delete it first (DELETE /rules/r1), update it with PUT, or choose another id"
    )


def test_update_rule_restarts_it_with_the_new_sql(h: Harness, manager: RuleManager):
    h.stream("demo", "v BIGINT")
    r = h.rule("r1", "SELECT v FROM demo")
    manager.update_rule(
        {"id": "r1", "sql": "SELECT v * 10 AS v FROM demo", "actions": [{"memory": {"topic": "out_r1"}}]}
    )
    r.feed([{"v": 2}])
    assert r.rows() == [{"v": 20}]


def test_rule_status_of_a_sink_failing_to_write_counts_and_the_rule_keeps_running(h: Harness, registry):
    class FlakySink:
        def __init__(self) -> None:
            self.calls = 0
            self.written: list = []

        def open(self) -> None: ...
        def flush(self) -> None: ...
        def status(self) -> str:
            return "connected"

        def close(self) -> None: ...

        def write(self, batch: pa.RecordBatch) -> None:
            self.calls += 1
            if self.calls == 1:
                raise OSError("broker away")
            self.written.extend(batch.to_pylist())

    sink = FlakySink()

    class FlakyPlugin:
        name, version, kind = "flaky", "1.0.0", "sink"

        def create(self, config: Any, context: Context) -> FlakySink:
            return sink

    registry.register(FlakyPlugin())
    h.stream("demo", "v BIGINT")
    r = h.rule("r1", "SELECT v FROM demo", actions=[{"flaky": {"retryCount": 0}}])
    r.feed([{"v": 1}])
    r.feed([{"v": 2}])
    r.settle()
    status = r.status()
    assert status["sink_flaky_0_0_exceptions_total"] == 1
    assert status["sink_flaky_0_0_last_exception"] == "broker away"
    assert status["sink_flaky_0_0_last_exception_time"] > 0
    assert sink.written == [{"v": 2}]


def test_a_sink_write_is_retried_after_an_io_error(h: Harness, registry):
    attempts = []

    class OnceFailing:
        def open(self) -> None: ...
        def flush(self) -> None: ...
        def status(self) -> str:
            return "connected"

        def close(self) -> None: ...

        def write(self, batch: pa.RecordBatch) -> None:
            attempts.append(batch.num_rows)
            if len(attempts) == 1:
                raise OSError("try again")

    class Plugin:
        name, version, kind = "once", "1.0.0", "sink"

        def create(self, config: Any, context: Context) -> OnceFailing:
            assert config == {}  # the engine's retry settings are not passed on
            return OnceFailing()

    registry.register(Plugin())
    h.stream("demo", "v BIGINT")
    r = h.rule("r1", "SELECT v FROM demo", actions=[{"once": {"retryCount": 2, "retryInterval": 0}}])
    r.feed([{"v": 1}])
    r.settle()
    status = r.status()
    assert attempts == [1, 1]
    assert status["sink_once_0_0_exceptions_total"] == 0 and status["sink_once_0_0_retries_total"] == 1


# -- plugin functions in rules -------------------------------------------------------------------


def test_plugin_function_error_drops_the_failing_row_and_the_rule_keeps_running(h: Harness, lib: Library):
    h.stream("demo", "v BIGINT")
    r = h.rule("r1", "SELECT half(v) AS hv FROM demo")
    r.feed([{"v": 4}, {"v": -1}])
    r.feed([{"v": 6}])
    assert r.rows() == [{"hv": 2.0}, {"hv": 3.0}]
    status = r.status()
    assert status["status"] == "running"
    assert status["op_1_project_0_exceptions_total"] == 1
    assert status["op_1_project_0_last_exception"] == "field 'hv': half: negative values are not allowed"
    assert status["function_half_0_calls_total"] == 4  # the batch, its two halves, the next batch
    assert status["function_half_0_exceptions_total"] == 2
    assert status["function_half_0_plugin"] == "pyfuncs"


def test_plugin_function_validate_gets_types_with_constants_marked_and_can_refuse(
    h: Harness, lib: Library, manager: RuleManager
):
    h.stream("demo", "v BIGINT, s STRING")
    h.rule("r1", "SELECT half(v) AS a, half(3) AS b FROM demo")
    half = lib.functions[0]
    assert half.seen_types == [[pa.int64()], [pa.field("const", pa.int64(), nullable=False)]]
    with pytest.raises(SqlError) as err:
        manager.create_rule({"id": "r2", "sql": "SELECT half(s) FROM demo", "actions": [{"log": {}}]})
    assert (
        str(err.value) == "function 'half' does not accept (string) at line 1, col 8; half needs a number, got string"
    )
    with pytest.raises(SqlError) as err:
        manager.create_rule({"id": "r2", "sql": "SELECT half(v, v) FROM demo", "actions": [{"log": {}}]})
    assert str(err.value) == "function 'half' takes 1 argument, got 2 at line 1, col 8; write half(...)"


def test_plugin_aggregate_gets_the_whole_window_with_group_ids(h: Harness, lib: Library):
    h.stream("demo", "v BIGINT, k STRING")
    r = h.rule("r1", "SELECT k, span(v) AS sp FROM demo GROUP BY k, COUNTWINDOW(5)")
    r.feed([{"v": 1, "k": "a"}, {"v": 10, "k": "b"}, {"v": 4, "k": "a"}, {"v": 30, "k": "b"}, {"v": 2, "k": "c"}])
    assert r.take() == [[{"k": "a", "sp": 3.0}, {"k": "b", "sp": 20.0}, {"k": "c", "sp": 0.0}]]
    r2 = h.rule("r2", "SELECT span(v) AS sp FROM demo GROUP BY COUNTWINDOW(2)")
    r2.feed([{"v": 5, "k": "a"}, {"v": 9, "k": "a"}])
    assert r2.take() == [[{"sp": 4.0}]]


def test_function_instances_live_from_start_to_stop(h: Harness, lib: Library, manager: RuleManager):
    h.stream("demo", "v BIGINT")
    h.rule("r1", "SELECT half(v) AS a FROM demo")
    use = manager.runtime("r1").plan.uses[0]
    instance = use.instance
    assert instance is not None and not instance.closed
    manager.stop_rule("r1")
    assert instance.closed and use.instance is None


def test_a_plugin_cannot_shadow_a_builtin(registry):
    class Shadow:
        name, version, kind = "shadow", "1.0.0", "function"
        functions = [Fn("Upper", _half)]

    with pytest.raises(RegistryError) as err:
        registry.register(Shadow())
    assert "collides with the built-in function 'upper'" in str(err.value)


# -- flow -------------------------------------------------------------------------------------


def test_bounded_source_end_flushes_windows_and_stops_the_rule(h: Harness, broker, manager: RuleManager):
    h.stream("demo", "v BIGINT")
    r = h.rule("r1", "SELECT collect(v) AS vs FROM demo GROUP BY TUMBLINGWINDOW(ss, 10)")
    r.feed([{"v": 1}, {"v": 2}])
    broker.end("in_demo")
    wait_for(lambda: manager.rule_status("r1")["status"] == "stopped: end of stream", "the rule to stop")
    assert r.output.get(timeout=5).to_pylist() == [{"vs": [1, 2]}]


@pytest.mark.parametrize(
    ("sql", "taken_in", "ops_queue_full"),
    [
        # stuck, and stable: 1 batch in the sink's write, 2 in its mailbox (full), 2 in the
        # operators' mailbox (full: the operators wait for the sink), and the source reads no more
        ("SELECT v FROM demo GROUP BY COUNTWINDOW(1)", 5, True),
        # no window: the operators run in the source's turn, which reads no more once the sink is full
        ("SELECT v FROM demo", 3, False),
    ],
)
def test_backpressure_bounded_queues_hold_back_the_source(
    h: Harness, registry, manager: RuleManager, sql: str, taken_in: int, ops_queue_full: bool
):
    gate = threading.Event()

    class SlowSink:
        def open(self) -> None: ...
        def flush(self) -> None: ...
        def status(self) -> str:
            return "connected"

        def close(self) -> None: ...

        def write(self, batch: pa.RecordBatch) -> None:
            gate.wait()

    class Plugin:
        name, version, kind = "slow", "1.0.0", "sink"

        def create(self, config: Any, context: Context) -> SlowSink:
            return SlowSink()

    registry.register(Plugin())
    h.stream("demo", "v BIGINT")
    h.rule("r1", sql, options={"bufferLength": 2}, actions=[{"slow": {}}])
    runtime = manager.runtime("r1")
    try:
        for i in range(20):
            h.broker.publish("in_demo", pa.RecordBatch.from_pylist([{"v": i}]))
        # the others wait at the source, which does not take them in
        wait_for(
            lambda: (
                runtime.source_metrics.records_in == taken_in
                and runtime._handoffs.full(0) == ops_queue_full
                and runtime._handoffs.full(1)
            ),
            "the queues to fill",
        )
        time.sleep(0.2)  # stable: nothing more is taken in
        assert runtime.source_metrics.records_in == taken_in
        source = runtime._feed.source
        assert source._sub.queue.qsize() == 20 - taken_in
        assert runtime.sink_metrics[0].records_out == 0
    finally:
        gate.set()
    wait_for(lambda: runtime.sink_metrics[0].records_out == 20, "the sink to catch up")


def test_source_decode_errors_are_counted_and_the_rule_continues(h: Harness):
    h.stream("demo", "v BIGINT")
    r = h.rule("r1", "SELECT v FROM demo")
    r.feed(pa.RecordBatch.from_pylist([{"v": "not a number"}]))
    r.feed([{"v": 7}])
    assert r.rows() == [{"v": 7}]
    status = r.status()
    assert status["source_demo_0_exceptions_total"] == 1
    assert status["source_demo_0_last_exception"].startswith(
        "column 'v' holds string values that do not convert to the stream's int64"
    )


def test_a_rule_whose_stream_changed_fails_to_start_with_the_reason(h: Harness, manager: RuleManager):
    h.stream("demo", "v BIGINT")
    manager.create_rule({"id": "r1", "sql": "SELECT v FROM demo", "actions": [{"log": {}}], "triggered": False})
    # a rule that still references the stream keeps it; replace the stream with another type
    with pytest.raises(RuleError):
        manager.replace_stream('CREATE STREAM demo (v BIGINT) WITH (TYPE="nosuch")')
    manager.replace_stream('CREATE STREAM demo (w BIGINT) WITH (TYPE="memory", DATASOURCE="in_demo")')
    with pytest.raises(SqlError) as err:
        manager.start_rule("r1")
    assert str(err.value) == "unknown column 'v' in SELECT at line 1, col 8; stream demo has columns: w"
    assert manager.rule_status("r1") == {"status": "stopped"}


def test_shutdown_stops_every_rule(h: Harness, manager: RuleManager):
    h.stream("demo", "v BIGINT")
    h.rule("r1", "SELECT v FROM demo")
    h.rule("r2", "SELECT v FROM demo GROUP BY TUMBLINGWINDOW(ss, 1)")
    manager.shutdown()
    assert manager.list_rules() == [
        {"id": "r1", "status": "stopped: host shutting down"},
        {"id": "r2", "status": "stopped: host shutting down"},
    ]
    assert T0  # the clock fixture is shared; nothing ticks after shutdown


def test_a_builtin_failing_on_a_value_drops_that_batch_and_names_the_field(h: Harness):
    h.stream("demo", "a BIGINT, b BIGINT")
    r = h.rule("r1", "SELECT a / b AS q FROM demo")
    r.feed([{"a": 1, "b": 0}])
    r.feed([{"a": 9, "b": 3}])
    assert r.rows() == [{"q": 3}]
    status = r.status()
    assert status["op_1_project_0_exceptions_total"] == 1
    assert status["op_1_project_0_last_exception"] == "field 'q': divide by zero"


def test_query_raises_the_original_error_of_a_failing_stage():
    from plutino.engine.query import query

    with pytest.raises(pa.ArrowInvalid, match="divide by zero"):
        query("SELECT a / b AS q FROM s", [pa.RecordBatch.from_pydict({"a": [1], "b": [0]})])
