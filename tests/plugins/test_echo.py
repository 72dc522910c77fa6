"""The bundled C function library "echo": echo(x) and countPlusOne(list), through the real loader."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from plutino.errors import PluginArgumentError
from plutino.native.loader import load_plugin
from plutino_contract.protocols import Context


@pytest.fixture(scope="module")
def echo_lib(plugin_build: Path):
    return load_plugin(plugin_build / "functions" / "echo.so", kind="function")


@pytest.fixture
def echo(echo_lib):
    inst = echo_lib.functions["echo"].create(Context(plugin_name="echo"))
    yield inst
    inst.close()


@pytest.fixture
def count_plus_one(echo_lib):
    inst = echo_lib.functions["countPlusOne"].create(Context(plugin_name="echo"))
    yield inst
    inst.close()


def test_library_declares_both_functions_as_scalars(echo_lib):
    assert (echo_lib.kind, echo_lib.name, echo_lib.version) == ("function", "echo", "1.0.0")
    assert sorted(echo_lib.functions) == ["countPlusOne", "echo"]
    assert not any(f.aggregate for f in echo_lib.functions.values())


@pytest.mark.parametrize("values, type_", [
    ([1, None, -3, 2**62], pa.int64()),
    ([1.5, None, float("-inf"), -0.0], pa.float64()),
    (["a", None, "", "héllo \"quoted\""], pa.string()),
    ([True, None, False, True], pa.bool_()),
])
def test_echo_returns_its_argument_with_nulls(echo, echo_lib, values, type_):
    arg = pa.array(values, type_)
    assert echo_lib.functions["echo"].validate([type_]) == type_
    result = echo.call([arg], len(arg))
    assert result.type == type_
    assert result.to_pylist() == values


def test_echo_reads_a_sliced_argument_from_its_offset(echo):
    base = pa.array([f"s{i}" if i % 3 else None for i in range(40)])
    arg = base.slice(5, 20)
    assert echo.call([arg], 20).to_pylist() == arg.to_pylist()
    ints = pa.array([i if i % 4 else None for i in range(40)], pa.int64()).slice(9, 17)
    assert echo.call([ints], 17).to_pylist() == ints.to_pylist()
    bools = pa.array([i % 3 == 0 if i % 5 else None for i in range(40)]).slice(3, 30)
    assert echo.call([bools], 30).to_pylist() == bools.to_pylist()


@pytest.mark.parametrize("constant, type_", [(7, pa.int64()), ("x", pa.string()), (None, pa.float64()),
                                             (True, pa.bool_())])
def test_echo_repeats_a_constant_argument_for_every_row(echo, constant, type_):
    assert echo.call([pa.array([constant], type_)], 5).to_pylist() == [constant] * 5


def test_echo_validate_refuses_an_unsupported_type_by_name(echo_lib):
    with pytest.raises(PluginArgumentError) as err:
        echo_lib.functions["echo"].validate([pa.timestamp("us")])
    assert "echo: argument type timestamp[us] (Arrow 'tsu:') is not supported; echo takes an int64, " \
           "float64, string or bool: cast the argument" in str(err.value)


def test_count_plus_one_is_list_length_plus_one_and_null_for_null_list(count_plus_one, echo_lib):
    arg = pa.array([[1, 2], [], None, [3], [None, None, None]], pa.list_(pa.int64()))
    assert echo_lib.functions["countPlusOne"].validate([arg.type]) == pa.int64()
    result = count_plus_one.call([arg], len(arg))
    assert result.type == pa.int64()
    assert result.to_pylist() == [3, 1, None, 2, 4]


def test_count_plus_one_reads_large_lists_slices_and_constants(count_plus_one):
    large = pa.array([["a"], ["b", "c"], None], pa.large_list(pa.string()))
    assert count_plus_one.call([large], 3).to_pylist() == [2, 3, None]
    sliced = pa.array([[1]] * 3 + [[1, 2, 3], None, []], pa.list_(pa.int64())).slice(3, 3)
    assert count_plus_one.call([sliced], 3).to_pylist() == [4, None, 1]
    constant = pa.array([[1, 2]], pa.list_(pa.int64()))
    assert count_plus_one.call([constant], 4).to_pylist() == [3, 3, 3, 3]


def test_count_plus_one_validate_refuses_a_non_list_argument(echo_lib):
    with pytest.raises(PluginArgumentError) as err:
        echo_lib.functions["countPlusOne"].validate([pa.int64()])
    assert "countPlusOne: the argument must be a list (Arrow '+l'), got int64 (Arrow 'l'); " \
           "pass an array column, e.g. countPlusOne(tags)" in str(err.value)


def test_echo_metadata_is_bundled_next_to_the_library(plugin_build: Path):
    meta = json.loads((plugin_build / "functions" / "echo.json").read_text())
    assert meta["about"]["description"]["en_US"]
    assert [f["name"] for f in meta["functions"]] == ["echo", "countPlusOne"]
    for f in meta["functions"]:
        assert {"name", "example", "hint", "args", "return"} <= set(f)
