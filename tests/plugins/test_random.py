"""The bundled C source "random": schema from the pattern, batches, seeds, count, config errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from plutino.errors import PluginCallError
from plutino.native.loader import load_plugin
from plutino_contract.protocols import Context, EndOfStream

PATTERN = {"count": 50, "temperature": 30.0, "name": "sensor", "ok": True, "debt": -7}


@pytest.fixture(scope="module")
def random_plugin(plugin_build: Path):
    return load_plugin(plugin_build / "sources" / "random.so", kind="source")


@pytest.fixture
def make(random_plugin):
    made = []

    def _make(**config: Any):
        src = random_plugin.create({"interval": 0, **config}, Context(plugin_name="random"))
        made.append(src)
        src.open()
        return src

    yield _make
    for src in made:
        src.close()


def _rows(src, batches: int) -> list[dict]:
    rows = []
    for _ in range(batches):
        rows += src.next(1.0).to_pylist()
    return rows


def test_plugin_is_the_random_source(random_plugin):
    assert (random_plugin.kind, random_plugin.name, random_plugin.version) == ("source", "random", "1.0.0")


def test_schema_has_one_column_per_pattern_key_typed_by_its_value(make):
    src = make(pattern=PATTERN)
    assert src.schema() == pa.schema([("count", pa.int64()), ("temperature", pa.float64()),
                                      ("name", pa.string()), ("ok", pa.bool_()), ("debt", pa.int64())])
    assert src.status() == "connected"


def test_values_are_randomized_within_the_pattern_bounds(make):
    rows = _rows(make(pattern=PATTERN, batch_size=200, seed=3), 2)
    assert len(rows) == 400
    assert all(0 <= r["count"] <= 50 and 0.0 <= r["temperature"] < 30.0 and -7 <= r["debt"] <= 0 for r in rows)
    assert all(r["name"] == "sensor" for r in rows)
    assert {r["ok"] for r in rows} == {True, False}
    assert len({r["count"] for r in rows}) > 10
    assert len({r["temperature"] for r in rows}) > 300


def test_each_batch_holds_batch_size_rows(make):
    src = make(pattern={"count": 50}, batch_size=7)
    batch = src.next(1.0)
    assert isinstance(batch, pa.RecordBatch)
    assert batch.num_rows == 7


def test_the_same_seed_gives_the_same_rows(make):
    first = _rows(make(pattern=PATTERN, batch_size=5, seed=42), 3)
    again = _rows(make(pattern=PATTERN, batch_size=5, seed=42), 3)
    other = _rows(make(pattern=PATTERN, batch_size=5, seed=43), 3)
    assert first == again
    assert first != other


def test_count_ends_the_stream_after_that_many_rows(make):
    src = make(pattern={"count": 50}, batch_size=4, count=10)
    assert [src.next(1.0).num_rows for _ in range(3)] == [4, 4, 2]
    with pytest.raises(EndOfStream):
        src.next(1.0)
    with pytest.raises(EndOfStream):
        make(pattern={"count": 50}, count=0).next(1.0)


def test_a_batch_not_due_within_the_timeout_gives_none(make):
    src = make(pattern={"count": 50}, interval=3_600_000)
    assert src.next(0).num_rows == 1  # the first batch comes at once
    assert src.next(0) is None        # the next one is an hour away


def test_integer_settings_may_be_strings_of_digits(make):
    src = make(pattern={"count": 5}, interval="0", batch_size="3", seed="9")
    assert src.next(1.0).num_rows == 3


def test_the_ext_conf_key_of_random_yaml_is_reproducible(plugin_build: Path, make):
    conf = yaml.safe_load((plugin_build / "sources" / "random.yaml").read_text())
    assert conf == {
        "default": {"interval": 1000, "pattern": {"count": 50}},
        "ext": {"interval": 100, "seed": 1, "pattern": {"count": 50, "temperature": 30.0, "name": "sensor"}},
    }
    a, b = make(**{**conf["ext"], "interval": 0}), make(**{**conf["ext"], "interval": 0})
    assert a.schema().names == ["count", "temperature", "name"]
    assert _rows(a, 3) == _rows(b, 3)


@pytest.mark.parametrize("config, message", [
    ({"interval": -5, "pattern": {"a": 1}},
     "random: interval must be >= 0 ms, got -5; set interval in the stream's properties or random.yaml"),
    ({"batch_size": 0, "pattern": {"a": 1}},
     "random: batch_size must be >= 1 row, got 0; set batch_size in the stream's properties or random.yaml"),
    ({"count": -1, "pattern": {"a": 1}},
     "random: count must be >= 0 rows (leave it out for an endless stream), got -1"),
    ({"interval": "soon", "pattern": {"a": 1}},
     "random: interval must be an integer, got \"soon\" (a string); set interval in the stream's properties"),
    ({"seed": 1.5, "pattern": {"a": 1}}, "random: seed must be an integer, got 1.5 (a number)"),
    ({}, "random: pattern is missing; set pattern to an object such as {\"count\": 50} in the stream's "
         "properties or random.yaml"),
    ({"pattern": {}}, "random: pattern is empty; give it at least one column, e.g. {\"count\": 50}"),
    ({"pattern": [1, 2]}, "random: pattern must be an object of column names to sample values, got an array"),
    ({"pattern": {"a": 1, "tags": ["x"]}},
     "random: pattern.tags is an array; pattern values must be numbers, strings or booleans"),
    ({"pattern": {"a": None}}, "random: pattern.a is null; pattern values must be numbers, strings or booleans"),
    ({"pattern": {"big": 10**20}}, "random: pattern.big does not fit in a 64-bit integer"),
])
def test_an_invalid_config_is_refused_at_create_with_its_fix(random_plugin, config, message):
    with pytest.raises(PluginCallError) as err:
        random_plugin.create({"interval": 0, **config}, Context(plugin_name="random"))
    assert err.value.status == "PLUTINO_INVALID"
    assert message in str(err.value)
    assert "plugin 'random'" in str(err.value)


def test_random_metadata_describes_every_setting(plugin_build: Path):
    meta = json.loads((plugin_build / "sources" / "random.json").read_text())
    assert [p["name"] for p in meta["properties"]] == ["interval", "pattern", "seed", "batch_size", "count"]
    for p in meta["properties"]:
        assert {"name", "default", "optional", "control", "type", "hint", "label"} <= set(p)
