"""The adapters on the loader's well-formed fixtures: real .so files, real pyarrow data."""

from __future__ import annotations

import gc
import logging
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from plutino.errors import PluginArgumentError, PluginCallError, PluginIOError, PlutinoError
from plutino.native.adapters import NativePlugin
from plutino.native.loader import load_plugin
from plutino_contract.protocols import (
    Context,
    EndOfStream,
    Function,
    FunctionInstance,
    FunctionLibrary,
    Sink,
    SinkPlugin,
    Source,
    SourcePlugin,
)


@pytest.fixture(scope="module")
def functions(broken: Path) -> NativePlugin:
    return load_plugin(broken / "good_function.so", "function")


@pytest.fixture(scope="module")
def source_plugin(broken: Path) -> NativePlugin:
    return load_plugin(broken / "good_source.so", "source")


@pytest.fixture(scope="module")
def sink_plugin(broken: Path) -> NativePlugin:
    return load_plugin(broken / "good_sink.so", "sink")


# ---------------------------------------------------------------------------- functions


def test_function_library_satisfies_the_protocols(functions: NativePlugin) -> None:
    assert isinstance(functions, FunctionLibrary)
    assert (functions.kind, functions.name, functions.version, functions.abi) == (
        "function", "good_function", "1.2.3", (1, 1))
    assert list(functions.functions) == [
        "double_plus_one", "total", "gil_held", "wrong_length", "say_hello", "calls", "fail_on"]
    fn = functions.functions["double_plus_one"]
    assert isinstance(fn, Function)
    assert (fn.aggregate, fn.min_args, fn.max_args) == (False, 1, 1)
    assert functions.functions["total"].aggregate is True
    assert functions.functions["gil_held"].volatile is True
    assert isinstance(fn.create(Context(plugin_name="good_function")), FunctionInstance)


def test_validate_returns_the_result_type(functions: NativePlugin) -> None:
    fn = functions.functions["double_plus_one"]
    assert fn.validate([pa.float64()]) == pa.float64()
    assert fn.validate([pa.field("const", pa.float64(), nullable=False)]) == pa.float64()


def test_validate_refusal_is_a_value_error_with_the_plugins_message(functions: NativePlugin) -> None:
    with pytest.raises(PluginArgumentError) as refused:
        functions.functions["double_plus_one"].validate([pa.int64()])
    assert isinstance(refused.value, ValueError)
    assert str(refused.value) == (
        "plugin 'good_function': function 'double_plus_one' validate failed (PLUTINO_INVALID): "
        "double_plus_one(x) needs a float64 argument, got format 'l'")


def test_wrong_argument_count_is_refused_by_the_host(functions: NativePlugin) -> None:
    with pytest.raises(PluginArgumentError) as refused:
        functions.functions["double_plus_one"].validate([pa.float64(), pa.float64()])
    assert str(refused.value) == (
        "plugin 'good_function': function 'double_plus_one' validate failed (PLUTINO_INVALID): "
        "double_plus_one() takes 1 argument, got 2; fix the call in the SQL")
    assert functions.functions["say_hello"].validate([pa.int64()] * 5) is None  # no validate(): count only


def test_scalar_call_computes_over_the_batch_with_nulls_constants_slices_and_chunks(functions: NativePlugin) -> None:
    inst = functions.functions["double_plus_one"].create(Context(plugin_name="good_function"))
    assert inst.call([pa.array([1.0, None, 3.0])], 3).to_pylist() == [3.0, None, 7.0]
    assert inst.call([pa.array([2.5])], 4).to_pylist() == [6.0] * 4           # a constant argument
    sliced = pa.array([0.0, 1.0, 2.0, 3.0, None, 5.0]).slice(2, 3)
    assert inst.call([sliced], 3).to_pylist() == [5.0, 7.0, None]
    chunked = pa.chunked_array([[1.0, 2.0], [3.0]])
    assert inst.call([chunked], 3).to_pylist() == [3.0, 5.0, 7.0]
    big = pa.array([float(i) for i in range(100_000)])
    assert inst.call([big], len(big)).equals(pc.add(pc.multiply(big, 2.0), 1.0))
    assert inst.call([pa.array([], pa.float64())], 0).to_pylist() == []
    inst.close()


def test_an_argument_of_the_wrong_length_is_refused_before_the_plugin_sees_it(functions: NativePlugin) -> None:
    inst = functions.functions["double_plus_one"].create()
    with pytest.raises(ValueError,
                       match=r"double_plus_one\(\): argument 1 has 2 rows, expected 3 \(or 1 for a constant\)"):
        inst.call([pa.array([1.0, 2.0])], 3)
    inst.close()


def test_aggregate_returns_one_row_per_group(functions: NativePlugin) -> None:
    inst = functions.functions["total"].create()
    x = pa.array([1.0, 2.0, None, 4.0, 5.0])
    groups = pa.array([0, 1, 0, 1, 2], pa.int32())
    assert inst.aggregate([x], 5, groups, 3).to_pylist() == [1.0, 6.0, 5.0]
    assert inst.aggregate([x], 5, None, 1).to_pylist() == [12.0]
    assert inst.aggregate([x.slice(1)], 4, pa.array([1, 1, 0, 0]), 2).to_pylist() == [9.0, 2.0]  # int64 ids cast
    assert inst.aggregate([pa.array([], pa.float64())], 0, None, 1).to_pylist() == [0.0]
    with pytest.raises(ValueError, match=r"group ids must lie in \[0, 2\), got 0\.\.2"):
        inst.aggregate([x], 5, groups, 2)
    with pytest.raises(PlutinoError, match="is an aggregate: call aggregate"):
        inst.call([x], 5)
    inst.close()


def test_calls_into_the_plugin_release_the_gil(functions: NativePlugin) -> None:
    """cffi releases the GIL around C calls: the plugin sees PyGILState_Check() == 0."""
    inst = functions.functions["gil_held"].create()
    assert inst.call([], 3).to_pylist() == [0, 0, 0]
    seen: list[list[int]] = []
    worker = threading.Thread(target=lambda: seen.append(inst.call([], 2).to_pylist()))
    worker.start()
    worker.join()
    assert seen == [[0, 0]]
    inst.close()


def test_a_result_of_the_wrong_length_is_a_call_error_not_a_crash(functions: NativePlugin) -> None:
    inst = functions.functions["wrong_length"].create()
    with pytest.raises(PluginCallError) as failed:
        inst.call([pa.array([1, 2, 3])], 3)
    assert str(failed.value) == (
        "plugin 'good_function': function 'wrong_length' call failed (CONTRACT_VIOLATION): "
        "call() returned 4 rows, expected 3 (one per input row) (a bug in the plugin; report it to its author)")
    inst.close()


def test_the_error_buffer_is_cleared_before_each_call(functions: NativePlugin) -> None:
    inst = functions.functions["fail_on"].create()
    with pytest.raises(PluginCallError, match=r"\(PLUTINO_ERROR\): fail_on: asked to fail with a message$"):
        inst.call([pa.array([1, 0])], 2)
    with pytest.raises(PluginCallError) as silent:
        inst.call([pa.array([2, 0])], 2)
    assert str(silent.value) == (
        "plugin 'good_function': function 'fail_on' call failed (PLUTINO_ERROR): (the plugin gave no message)")
    assert inst.call([pa.array([7, 8])], 2).to_pylist() == [7, 8]
    inst.close()


def test_per_use_state_is_created_per_instance_and_closed_once(functions: NativePlugin) -> None:
    fn = functions.functions["calls"]
    a, b = fn.create(), fn.create()
    assert a.call([pa.array([0])], 1).to_pylist() == [1]
    assert a.call([pa.array([0, 0])], 2).to_pylist() == [2, 2]
    assert b.call([pa.array([0])], 1).to_pylist() == [1]
    a.close()
    a.close()
    with pytest.raises(PlutinoError, match="used after close"):
        a.call([pa.array([0])], 1)
    b.close()


def test_plugin_logs_reach_python_logging_and_the_context(functions: NativePlugin,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    heard: list[tuple[int, str]] = []
    ctx = Context(plugin_name="good_function", rule_id="r1", log=lambda level, msg: heard.append((level, msg)))
    inst = functions.functions["say_hello"].create(ctx)
    with caplog.at_level(logging.INFO, logger="plutino.plugin"):
        assert inst.call([], 3).to_pylist() == [1, 1, 1]
    record = next(r for r in caplog.records if r.name == "plutino.plugin.good_function")
    assert (record.levelno, record.getMessage(), record.rule_id) == (
        logging.INFO, "hello from good_function in rule 'r1', 3 rows", "r1")
    assert heard == [(20, "hello from good_function in rule 'r1', 3 rows")]
    inst.close()


def test_exported_arguments_are_released_after_each_call(functions: NativePlugin) -> None:
    inst = functions.functions["double_plus_one"].create()
    inst.call([pa.array([1.0])], 1)  # warm the per-type schema cache
    gc.collect()
    before = pa.total_allocated_bytes()
    for _ in range(50):
        inst.call([pa.array([float(i) for i in range(1000)])], 1000)
    gc.collect()
    assert pa.total_allocated_bytes() == before
    inst.close()


# ---------------------------------------------------------------------------- sources


def test_source_produces_batches_until_end_of_stream(source_plugin: NativePlugin) -> None:
    assert isinstance(source_plugin, SourcePlugin)
    src = source_plugin.create({"batch": 3, "batches": 2}, Context(plugin_name="good_source"))
    assert isinstance(src, Source)
    assert src.schema() == pa.schema([("n", pa.int64()), ("label", pa.utf8())])
    assert src.status() == "connecting"
    src.open()
    assert src.status() == "connected"
    first = src.next(0.1)
    assert first.to_pydict() == {"n": [0, 1, 2], "label": ["row-0", "row-1", "row-2"]}
    assert src.next(0.1).column("n").to_pylist() == [3, 4, 5]
    with pytest.raises(EndOfStream):
        src.next(0.1)
    src.close()
    src.close()
    assert src.status() == "disconnected"
    with pytest.raises(PlutinoError, match="closed source"):
        src.next(0.1)
    assert first.column("label").to_pylist()[2] == "row-2"  # a batch outlives its source


def test_source_with_no_data_within_the_timeout_returns_none(source_plugin: NativePlugin) -> None:
    src = source_plugin.create({"idle_first": True, "batches": 1})
    assert src.next(0.0) is None
    assert src.next(0.0).num_rows == 4
    src.close()


def test_source_config_refused_by_the_plugin(source_plugin: NativePlugin) -> None:
    with pytest.raises(PluginCallError) as refused:
        source_plugin.create({"batch": -1})
    assert str(refused.value) == (
        "plugin 'good_source': source create failed (PLUTINO_INVALID): "
        "batch must be > 0, got -1; set \"batch\" to the rows per batch")


def test_source_error_mid_stream_is_an_exception_with_the_plugins_message(source_plugin: NativePlugin) -> None:
    src = source_plugin.create({"fail_at": 1})
    assert src.next(0).num_rows == 4
    with pytest.raises(PluginCallError) as failed:
        src.next(0)
    assert str(failed.value) == (
        "plugin 'good_source': source next failed (PLUTINO_ERROR): device unplugged before batch 1")
    src.close()


def test_config_that_is_not_json_is_refused_before_the_plugin(source_plugin: NativePlugin) -> None:
    with pytest.raises(PlutinoError) as refused:
        source_plugin.create({"batch": object()})
    assert str(refused.value).startswith("plugin 'good_source': its config cannot be passed as JSON (")


# ---------------------------------------------------------------------------- sinks


def test_sink_receives_every_batch(sink_plugin: NativePlugin, tmp_path: Path) -> None:
    assert isinstance(sink_plugin, SinkPlugin)
    out = tmp_path / "tally.txt"
    snk = sink_plugin.create({"path": str(out)}, Context(plugin_name="good_sink"))
    assert isinstance(snk, Sink)
    snk.open()
    batch = pa.record_batch({"n": pa.array([1, 2, None, 4], pa.int64()), "s": pa.array(list("abcd"))})
    snk.write(batch)
    snk.write(batch.slice(1, 2))                                          # rows 2, None
    snk.write(pa.record_batch({"x": pa.array(["other", "schema"])}))      # schema changes
    snk.write(pa.Table.from_batches([batch, batch]))                      # a table: batch by batch
    snk.flush()
    assert out.read_text() == "rows=16 batches=5 sum=23\n"
    assert snk.status() == "connected"
    snk.close()
    assert out.read_text() == "rows=16 batches=5 sum=23\n"
    assert snk.status() == "disconnected"


def test_sink_retryable_failure_is_an_os_error(sink_plugin: NativePlugin, tmp_path: Path) -> None:
    snk = sink_plugin.create({"path": str(tmp_path / "t"), "fail_write": True})
    with pytest.raises(PluginIOError) as failed:
        snk.write(pa.record_batch({"n": pa.array([1])}))
    assert isinstance(failed.value, OSError) and failed.value.retryable
    assert str(failed.value) == "plugin 'good_sink': sink write failed (PLUTINO_IO): the disk is full (fixture)"
    snk.close()


def test_sink_config_refused_by_the_plugin(sink_plugin: NativePlugin) -> None:
    with pytest.raises(PluginCallError) as refused:
        sink_plugin.create({})
    assert str(refused.value) == (
        "plugin 'good_sink': sink create failed (PLUTINO_INVALID): "
        "path is required; set \"path\" to the file to write the tally to")


def test_function_library_has_no_create(functions: NativePlugin) -> None:
    with pytest.raises(PlutinoError, match="is a function library"):
        functions.create({})
