"""The bundled C sink "file": rows appended as JSON lines, fields, flush_every, clear errors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from plutino.errors import PluginCallError
from plutino.native.loader import load_plugin
from plutino_contract.protocols import Context


@pytest.fixture(scope="module")
def file_plugin(plugin_build: Path):
    return load_plugin(plugin_build / "sinks" / "file.so", kind="sink")


@pytest.fixture
def make(file_plugin):
    made = []

    def _make(**config: Any):
        sink = file_plugin.create(config, Context(plugin_name="file"))
        made.append(sink)
        return sink

    yield _make
    for sink in made:
        sink.close()


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_plugin_is_the_file_sink(file_plugin):
    assert (file_plugin.kind, file_plugin.name, file_plugin.version) == ("sink", "file", "1.0.0")


def test_each_row_becomes_one_json_line_keyed_by_column_names(make, tmp_path: Path):
    out = tmp_path / "out.jsonl"
    sink = make(path=str(out))
    sink.open()
    assert sink.status() == "connected"
    batch = pa.record_batch({
        "i": pa.array([1, None, -(2**63)], pa.int64()),
        "f": pa.array([0.1, 1.0, None], pa.float64()),
        "s": pa.array(['say "hi"\n', None, "tab\there \\ é \x01"]),
        "b": pa.array([True, False, None]),
        "n": pa.nulls(3),
    })
    sink.write(batch)
    rows = _lines(out)
    assert rows == [
        {"i": 1, "f": 0.1, "s": 'say "hi"\n', "b": True, "n": None},
        {"i": None, "f": 1.0, "s": None, "b": False, "n": None},
        {"i": -(2**63), "f": None, "s": "tab\there \\ é \x01", "b": None, "n": None},
    ]
    assert isinstance(rows[1]["f"], float)  # 1.0 is written as 1.0, not 1


def test_non_finite_floats_are_written_as_null_and_floats_round_trip(make, tmp_path: Path):
    out = tmp_path / "f.jsonl"
    values = [math.nan, math.inf, -math.inf, 1e300, 5e-324, -0.0, 2.0 / 3.0, 123456789.0]
    make(path=str(out)).write(pa.record_batch({"x": pa.array(values)}))
    assert [r["x"] for r in _lines(out)] == [None, None, None, 1e300, 5e-324, -0.0, 2.0 / 3.0, 123456789.0]


def test_rows_are_appended_across_writes_and_sinks(make, tmp_path: Path):
    out = tmp_path / "a.jsonl"
    first = make(path=str(out))
    first.write(pa.record_batch({"k": pa.array([1, 2])}))
    second = make(path=str(out))
    second.write(pa.record_batch({"k": pa.array([3])}))
    first.write(pa.record_batch({"k": pa.array([4])}))
    assert [r["k"] for r in _lines(out)] == [1, 2, 3, 4]


def test_fields_selects_and_orders_the_written_columns(make, tmp_path: Path):
    out = tmp_path / "sel.jsonl"
    sink = make(path=str(out), fields=["c", "a"])
    sink.write(pa.record_batch({"a": [1, 2], "b": ["x", "y"], "c": [True, None]}))
    rows = _lines(out)
    assert rows == [{"c": True, "a": 1}, {"c": None, "a": 2}]
    assert list(rows[0]) == ["c", "a"]


def test_an_empty_fields_list_writes_every_column(make, tmp_path: Path):
    out = tmp_path / "all.jsonl"
    make(path=str(out), fields=[]).write(pa.record_batch({"a": [1], "b": ["x"]}))
    assert _lines(out) == [{"a": 1, "b": "x"}]


def test_a_sliced_batch_writes_only_its_own_rows(make, tmp_path: Path):
    out = tmp_path / "slice.jsonl"
    batch = pa.record_batch({"a": pa.array(range(10)), "s": pa.array([str(i) if i % 2 else None for i in range(10)],
                                                                      pa.large_string())})
    make(path=str(out)).write(batch.slice(3, 4))
    assert _lines(out) == [{"a": 3, "s": "3"}, {"a": 4, "s": None}, {"a": 5, "s": "5"}, {"a": 6, "s": None}]


def test_flush_every_holds_rows_until_that_many_gathered(make, tmp_path: Path):
    out = tmp_path / "buffered.jsonl"
    sink = make(path=str(out), flush_every=3)
    sink.open()
    sink.write(pa.record_batch({"k": [1, 2]}))
    assert out.read_text() == ""
    sink.write(pa.record_batch({"k": [3]}))
    assert len(_lines(out)) == 3
    sink.write(pa.record_batch({"k": [4]}))
    assert len(_lines(out)) == 3
    sink.flush()
    assert [r["k"] for r in _lines(out)] == [1, 2, 3, 4]
    sink.write(pa.record_batch({"k": [5]}))
    sink.close()
    assert [r["k"] for r in _lines(out)] == [1, 2, 3, 4, 5]


def test_a_missing_directory_is_reported_with_the_fix(make, tmp_path: Path):
    path = tmp_path / "no" / "such" / "y.jsonl"
    sink = make(path=str(path))
    with pytest.raises(PluginCallError) as err:
        sink.open()
    assert f"file: cannot open {path} for appending: No such file or directory; create the directory or " \
           "change path" in str(err.value)
    assert err.value.retryable
    assert sink.status() == "disconnected"


def test_an_unsupported_column_type_names_the_column_and_writes_nothing(make, tmp_path: Path):
    out = tmp_path / "ts.jsonl"
    sink = make(path=str(out))
    with pytest.raises(PluginCallError) as err:
        sink.write(pa.record_batch({"a": [1], "ts": pa.array([0], pa.timestamp("us"))}))
    assert err.value.status == "PLUTINO_UNSUPPORTED"
    assert "file: column 'ts' has Arrow type 'tsu:', which the file sink cannot write" in str(err.value)
    assert out.read_text() == ""


def test_a_field_missing_from_the_rows_is_refused(make, tmp_path: Path):
    sink = make(path=str(tmp_path / "m.jsonl"), fields=["a", "nope"])
    with pytest.raises(PluginCallError) as err:
        sink.write(pa.record_batch({"a": [1]}))
    assert "file: field 'nope' in fields is not a column of the rule's output" in str(err.value)


@pytest.mark.parametrize("config, message", [
    ({}, "file: path is required (got nothing); set path to the file to append to in the action's "
         "properties or file.yaml"),
    ({"path": ""}, "file: path is required (got an empty string)"),
    ({"path": 5}, "file: path is required (got a number)"),
    ({"path": "x", "fields": "a"}, "file: fields must be a list of column names, got a string"),
    ({"path": "x", "fields": ["a", 1]}, "file: fields must be a list of column names, but item 1 is a number"),
    ({"path": "x", "flush_every": 0}, "file: flush_every must be a row count >= 1, got 0"),
])
def test_an_invalid_config_is_refused_at_create(file_plugin, config, message):
    with pytest.raises(PluginCallError) as err:
        file_plugin.create(config, Context(plugin_name="file"))
    assert err.value.status == "PLUTINO_INVALID"
    assert message in str(err.value)


def test_file_yaml_and_metadata_are_bundled(plugin_build: Path):
    conf = yaml.safe_load((plugin_build / "sinks" / "file.yaml").read_text())
    assert conf == {"default": {"path": "plutino_data/out/file_sink.jsonl"}}
    meta = json.loads((plugin_build / "sinks" / "file.json").read_text())
    assert [p["name"] for p in meta["properties"]] == ["path", "fields", "flush_every"]
