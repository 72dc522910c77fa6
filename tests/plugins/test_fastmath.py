"""The bundled C library "fastmath" (used by the benchmarks): mul2add1(x) and upperAscii(s)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from plutino.errors import PluginArgumentError
from plutino.native.loader import load_plugin
from plutino_contract.protocols import Context


@pytest.fixture(scope="module")
def fastmath(plugin_build: Path):
    return load_plugin(plugin_build / "functions" / "fastmath.so", kind="function")


@pytest.fixture
def mul2add1(fastmath):
    assert fastmath.functions["mul2add1"].validate([pa.float64()]) == pa.float64()
    inst = fastmath.functions["mul2add1"].create(Context(plugin_name="fastmath"))
    yield inst
    inst.close()


@pytest.fixture
def upper(fastmath):
    assert fastmath.functions["upperAscii"].validate([pa.string()]) == pa.string()
    inst = fastmath.functions["upperAscii"].create(Context(plugin_name="fastmath"))
    yield inst
    inst.close()


def _with_nulls(n: int, make, seed: int = 7) -> list:
    rng = random.Random(seed)
    return [None if rng.random() < 0.2 else make(rng) for _ in range(n)]


def test_mul2add1_doubles_and_adds_one_keeping_nulls(mul2add1):
    result = mul2add1.call([pa.array([1.5, None, -2.0, 0.0])], 4)
    assert result.type == pa.float64()
    assert result.to_pylist() == [4.0, None, -3.0, 1.0]


def test_mul2add1_converts_int64_to_float64(fastmath):
    assert fastmath.functions["mul2add1"].validate([pa.int64()]) == pa.float64()
    inst = fastmath.functions["mul2add1"].create(Context(plugin_name="fastmath"))
    assert inst.call([pa.array([3, None, -5], pa.int64())], 3).to_pylist() == [7.0, None, -9.0]
    inst.close()


@pytest.mark.parametrize("start, length", [(0, 1000), (3, 517), (8, 64), (13, 1), (5, 0)])
def test_mul2add1_matches_pyarrow_on_slices_at_any_bit_offset(mul2add1, start, length):
    arg = pa.array(_with_nulls(1100, lambda r: r.uniform(-1e6, 1e6))).slice(start, length)
    expected = pc.add(pc.multiply(arg, 2.0), 1.0)
    result = mul2add1.call([arg], length)
    assert result.null_count == arg.null_count
    assert result.equals(expected)


def test_mul2add1_repeats_a_constant_and_a_null_constant(mul2add1):
    assert mul2add1.call([pa.array([2.5])], 3).to_pylist() == [6.0, 6.0, 6.0]
    assert mul2add1.call([pa.array([None], pa.float64())], 3).to_pylist() == [None, None, None]


def test_upper_ascii_uppercases_only_ascii_letters(upper):
    arg = pa.array(["abc", "Zé!xyz{`", None, "", "ß09az@["])
    result = upper.call([arg], len(arg))
    assert result.type == pa.string()
    assert result.to_pylist() == ["ABC", "Zé!XYZ{`", None, "", "ß09AZ@["]


@pytest.mark.parametrize("start, length", [(0, 700), (1, 333), (16, 40), (7, 0)])
def test_upper_ascii_matches_pyarrow_on_slices(upper, start, length):
    letters = "abcxyzABC é-_{}"
    arg = pa.array(_with_nulls(800, lambda r: "".join(r.choice(letters) for _ in range(r.randrange(12))))) \
        .slice(start, length)
    result = upper.call([arg], length)
    assert result.equals(pc.ascii_upper(arg))


def test_upper_ascii_repeats_a_constant_and_a_null_constant(upper):
    assert upper.call([pa.array(["ab"])], 3).to_pylist() == ["AB"] * 3
    assert upper.call([pa.array([None], pa.string())], 2).to_pylist() == [None, None]


def test_validate_refuses_wrong_types_with_a_cast_hint(fastmath):
    with pytest.raises(PluginArgumentError) as err:
        fastmath.functions["mul2add1"].validate([pa.string()])
    assert "mul2add1: the argument must be a float64 or int64, got Arrow type 'u'; " \
           "cast it, e.g. mul2add1(CAST(x AS FLOAT))" in str(err.value)
    with pytest.raises(PluginArgumentError) as err:
        fastmath.functions["upperAscii"].validate([pa.int64()])
    assert "upperAscii: the argument must be a string (Arrow 'u'), got Arrow type 'l'" in str(err.value)


def test_fastmath_metadata_is_bundled_next_to_the_library(plugin_build: Path):
    meta = json.loads((plugin_build / "functions" / "fastmath.json").read_text())
    assert [f["name"] for f in meta["functions"]] == ["mul2add1", "upperAscii"]
