"""The bundled C aggregate accumulateWordCount(text, sep), through the real loader."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from plutino.errors import PluginArgumentError, PluginCallError
from plutino.native.loader import load_plugin
from plutino_contract.protocols import Context

SPACE = pa.array([" "])


@pytest.fixture(scope="module")
def word_count_fn(plugin_build: Path):
    lib = load_plugin(plugin_build / "functions" / "accumulateWordCount.so", kind="function")
    return lib.functions["accumulateWordCount"]


@pytest.fixture
def word_count(word_count_fn):
    inst = word_count_fn.create(Context(plugin_name="accumulateWordCount"))
    yield inst
    inst.close()


def test_it_is_declared_as_an_aggregate_of_two_arguments(word_count_fn):
    assert word_count_fn.aggregate
    assert (word_count_fn.min_args, word_count_fn.max_args) == (2, 2)
    assert word_count_fn.validate([pa.string(), pa.field("const", pa.string(), nullable=False)]) == pa.int64()


def test_single_group_counts_all_words_skipping_empty_words_and_null_texts(word_count):
    text = pa.array(["a b c", "d  e ", None, "", "   ", " f"])
    result = word_count.aggregate([text, SPACE], len(text), None, 1)
    assert result.type == pa.int64()
    assert result.to_pylist() == [6]


def test_each_group_gets_its_own_total(word_count):
    text = pa.array(["one two", "three", "four five six", None, "seven"])
    groups = pa.array([0, 1, 0, 2, 2], pa.int32())
    assert word_count.aggregate([text, SPACE], 5, groups, 3).to_pylist() == [5, 1, 1]


def test_a_group_with_no_rows_or_only_null_texts_counts_zero(word_count):
    text = pa.array([None, "a b"])
    assert word_count.aggregate([text, SPACE], 2, pa.array([0, 2], pa.int32()), 3).to_pylist() == [0, 0, 2]
    assert word_count.aggregate([pa.array([], pa.string()), SPACE], 0, None, 1).to_pylist() == [0]


def test_a_multi_character_separator_splits_on_the_whole_string(word_count):
    text = pa.array(["a, b,c, d", ", , x"])
    assert word_count.aggregate([text, pa.array([", "])], 2, None, 1).to_pylist() == [3 + 1]


def test_a_separator_column_is_read_row_by_row(word_count):
    text = pa.array(["a-b-c", "a b", "x;y"])
    sep = pa.array(["-", " ", ";"])
    assert word_count.aggregate([text, sep], 3, None, 1).to_pylist() == [7]


def test_large_and_sliced_text_is_counted(word_count):
    text = pa.array(["skip me"] * 3 + ["a b", "c"], pa.large_string()).slice(3)
    assert word_count.aggregate([text, SPACE], 2, None, 1).to_pylist() == [3]


def test_an_empty_separator_fails_with_a_message(word_count):
    with pytest.raises(PluginCallError) as err:
        word_count.aggregate([pa.array(["a b"]), pa.array([""])], 1, None, 1)
    assert "accumulateWordCount: the separator is an empty string; pass a non-empty one, " \
           "e.g. accumulateWordCount(line, ' ')" in str(err.value)


def test_validate_refuses_non_string_arguments_by_position(word_count_fn):
    with pytest.raises(PluginArgumentError) as err:
        word_count_fn.validate([pa.int64(), pa.string()])
    assert "accumulateWordCount: text must be a string, got Arrow type 'l'" in str(err.value)
    with pytest.raises(PluginArgumentError) as err:
        word_count_fn.validate([pa.string(), pa.float64()])
    assert "accumulateWordCount: sep must be a string, got Arrow type 'g'" in str(err.value)


def test_word_count_metadata_is_bundled_next_to_the_library(plugin_build: Path):
    meta = json.loads((plugin_build / "functions" / "accumulateWordCount.json").read_text())
    (fn,) = meta["functions"]
    assert fn["name"] == "accumulateWordCount"
    assert [a["name"] for a in fn["args"]] == ["text", "sep"]
