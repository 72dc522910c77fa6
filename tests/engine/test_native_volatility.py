"""PLUTINO_FN_VOLATILE, with a real native library (native_plugins/broken/function_volatility.c):
a function without it whose arguments are all constants is computed once per rule run; a
volatile one is called for every batch. Each fixture function returns, in every row, how
many times call() has run on its per-use state."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine_helpers import Harness


@pytest.fixture
def volatility(registry, plugin_build: Path):
    from plutino.native.loader import load_plugin

    plugin = load_plugin(plugin_build / "broken" / "function_volatility.so", kind="function")
    registry.register(plugin)
    return plugin


def _feed_three(r) -> None:
    for b in range(3):
        r.feed([{"v": b * 10 + i} for i in range(4)])


def test_the_flags_are_read_from_the_descriptor(volatility):
    assert not volatility.functions["calls_stable"].volatile
    assert volatility.functions["calls_volatile"].volatile


def test_a_stable_function_with_constant_arguments_is_computed_once_per_rule_run(h: Harness, volatility):
    h.stream("s", "v BIGINT")
    r = h.rule("r1", "SELECT calls_stable(7) AS c, calls_stable() AS z, v FROM s")
    _feed_three(r)
    rows = r.rows()
    assert len(rows) == 12
    assert {(row["c"], row["z"]) for row in rows} == {(1, 1)}
    status = r.status()
    assert status["function_calls_stable_0_calls_total"] == 1
    assert status["function_calls_stable_1_calls_total"] == 1
    # a new run computes it again, once, with a new instance
    h.manager.stop_rule("r1")
    h.manager.start_rule("r1")
    r.feed([{"v": 1}, {"v": 2}])
    assert {row["c"] for row in r.rows()} == {1}
    assert r.status()["function_calls_stable_0_calls_total"] == 1


def test_a_volatile_function_with_constant_arguments_is_called_for_every_batch(h: Harness, volatility):
    h.stream("s", "v BIGINT")
    r = h.rule("r1", "SELECT calls_volatile(7) AS c FROM s")
    _feed_three(r)
    assert [sorted({row["c"] for row in batch}) for batch in r.take()] == [[1], [2], [3]]
    assert r.status()["function_calls_volatile_0_calls_total"] == 3


def test_a_stable_function_of_a_column_is_called_for_every_batch(h: Harness, volatility):
    h.stream("s", "v BIGINT")
    r = h.rule("r1", "SELECT calls_stable(v) AS c FROM s")
    _feed_three(r)
    assert [sorted({row["c"] for row in batch}) for batch in r.take()] == [[1], [2], [3]]
