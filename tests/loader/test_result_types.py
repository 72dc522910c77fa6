"""Results are checked against validate(): a result of another type, or (with out_type left
unset) an array that is not laid out as validate()'s type, is a contract violation naming the
plugin, the function and both types -- never bytes read as another type. Fixture:
native_plugins/broken/function_result_types.c."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pytest

from plutino.engine import BUILTIN_NAMES, RuleManager
from plutino.engine.query import query
from plutino.errors import PluginCallError
from plutino.io.builtin import register_builtins
from plutino.io.memory import MemoryBroker
from plutino.native.loader import load_plugin
from plutino.registry import Registry

X = pa.array([1.0, 2.0, 3.0])


@pytest.fixture(scope="module")
def plugin(broken: Path):
    return load_plugin(broken / "function_result_types.so", kind="function")


def _call(plugin, name: str, times: int = 2) -> list[str]:
    """Call ``name`` (validated for float64 args) ``times`` times; the error messages."""
    fn = plugin.functions[name]
    fn.validate([pa.float64()])
    instance = fn.create()
    messages = []
    try:
        for _ in range(times):
            with pytest.raises(PluginCallError) as err:
                if fn.aggregate:
                    instance.aggregate([X], 3, None, 1)
                else:
                    instance.call([X], 3)
            assert err.value.status == "CONTRACT_VIOLATION"
            messages.append(str(err.value))
    finally:
        instance.close()
    return messages


def test_a_result_whose_out_type_differs_from_validate_is_refused_naming_both_types(plugin):
    first, again = _call(plugin, "f64_as_i64")
    assert first == again == (
        "plugin 'function_result_types': function 'f64_as_i64' call failed (CONTRACT_VIOLATION): call() returned "
        'int64 ("l"), but validate() gave float64 ("g") for these argument types; make call() return float64 or '
        "validate() give int64 (the host never reads one type as another) (a bug in the plugin; report it to its "
        "author)")


def test_an_aggregate_is_checked_the_same_way(plugin):
    (message,) = _call(plugin, "f64_sum_as_i64", 1)
    assert "function 'f64_sum_as_i64' aggregate failed (CONTRACT_VIOLATION): aggregate() returned int64" in message
    assert 'validate() gave float64 ("g")' in message


@pytest.mark.parametrize("name, validated, problem", [
    ("f64_three_buffers", 'float64 ("g")', "Expected 2 buffers for imported type double, ArrowArray struct has 3"),
    ("i64_with_child", 'int64 ("l")', "ArrowArray struct has 1 children, expected 0 for type int64"),
    ("f64_no_values", 'float64 ("g")', "null data pointer"),
])
def test_a_result_without_out_type_must_be_laid_out_as_the_validated_type(plugin, name, validated, problem):
    for message in _call(plugin, name):  # the first call and the fast path after it
        assert message.startswith(f"plugin 'function_result_types': function '{name}' call failed (CONTRACT_VIOLATION):"
                                  f" call() left out_type unset, so its result must be {validated}, the type "
                                  "validate() gave, but the array it returned is not laid out as one (")
        assert problem in message
        assert message.endswith("; return " + validated.split()[0] + ", or set out_type to the type returned and make"
                                " validate() give it (a bug in the plugin; report it to its author)")


def test_a_well_formed_result_without_out_type_takes_the_validated_type(plugin):
    fn = plugin.functions["f64_ok"]
    assert fn.validate([pa.float64()]) == pa.float64()
    instance = fn.create()
    try:
        for _ in range(3):  # the first call checks and learns the type; the next ones take the fast path
            result = instance.call([X], 3)
            assert (result.type, result.to_pylist()) == (pa.float64(), [1.0, 1.0, 1.0])
    finally:
        instance.close()


def test_a_query_reports_the_violation_instead_of_values(plugin):
    registry = Registry(BUILTIN_NAMES)
    registry.register(plugin)
    batch = pa.record_batch({"x": X})
    with pytest.raises(PluginCallError) as err:
        query("SELECT f64_as_i64(x) AS r FROM s", [batch], registry=registry, schema=batch.schema)
    assert 'call() returned int64 ("l"), but validate() gave float64 ("g")' in str(err.value)
    assert query("SELECT f64_ok(x) AS r FROM s", [batch], registry=registry,
                 schema=batch.schema).to_pylist() == [{"r": 1.0}] * 3


def test_a_rule_counts_the_violation_and_emits_no_rows(plugin):
    broker = MemoryBroker()
    registry = Registry(BUILTIN_NAMES)
    register_builtins(registry, broker)
    registry.register(plugin)
    manager = RuleManager(registry)
    try:
        manager.create_stream('CREATE STREAM s (x FLOAT) WITH (TYPE="memory", DATASOURCE="in_s")')
        out = broker.subscribe("out")
        manager.create_rule({"id": "r1", "sql": "SELECT f64_three_buffers(x) AS r FROM s",
                             "actions": [{"memory": {"topic": "out"}}]})
        broker.publish("in_s", pa.record_batch({"x": X}))
        deadline = time.monotonic() + 10
        while (status := manager.rule_status("r1"))["function_f64_three_buffers_0_exceptions_total"] < 1:
            assert time.monotonic() < deadline, "the failed call was not counted"
            time.sleep(0.002)
        assert manager.runtime("r1").wait_idle(10)
        assert status["status"] == "running"
        (last,) = [v for k, v in manager.rule_status("r1").items() if k.startswith("op_") and k.endswith(
            "_last_exception")]
        assert "function 'f64_three_buffers' call failed (CONTRACT_VIOLATION)" in last
        assert 'its result must be float64 ("g")' in last
        assert out.get(timeout=0) is None  # no garbage rows
    finally:
        manager.shutdown()
