"""Windows of every kind, at their exact boundaries, in running rules driven by a manual clock.

Each test feeds batches through the memory source at chosen clock times, moves the clock, and
reads what the rule's memory sink emitted. T0 is on a whole minute, so a 10 s tumbling window
starts at T0.
"""

from __future__ import annotations

from engine_helpers import T0, Harness


def window_rule(
    h: Harness, window: str, select: str = "collect(v) AS vs, window_start() AS ws, window_end() AS we", **kw
):
    h.stream("demo", "v BIGINT, k STRING")
    return h.rule("w", f"SELECT {select} FROM demo GROUP BY {window}", **kw)


def at(h: Harness, rule, ms: int, *values: int, key: str = "a") -> None:
    """Feed rows v=values at clock time T0+ms (the clock moves there first, ticking)."""
    rule.tick(T0 + ms)
    rule.feed([{"v": v, "k": key} for v in values])


def test_tumbling_window_closes_exactly_at_its_end(h: Harness):
    r = window_rule(h, "TUMBLINGWINDOW(ss, 10)")
    at(h, r, 0, 1)
    at(h, r, 9_999, 2)
    assert r.take() == []
    r.tick(T0 + 10_000)
    assert r.take() == [[{"vs": [1, 2], "ws": T0, "we": T0 + 10_000}]]
    at(h, r, 10_000, 3)  # on the boundary: the next window
    r.tick(T0 + 19_999)
    assert r.take() == []
    r.tick(T0 + 20_000)
    assert r.take() == [[{"vs": [3], "ws": T0 + 10_000, "we": T0 + 20_000}]]
    r.tick(T0 + 60_000)
    assert r.take() == []  # empty windows emit nothing


def test_hopping_window_emits_every_hop_with_overlapping_rows(h: Harness):
    r = window_rule(h, "HOPPINGWINDOW(ss, 10, 5)")
    at(h, r, 1_000, 1)
    at(h, r, 6_000, 2)
    at(h, r, 9_000, 3)
    r.tick(T0 + 10_000)
    assert r.take() == [
        [{"vs": [1], "ws": T0 - 5_000, "we": T0 + 5_000}],
        [{"vs": [1, 2, 3], "ws": T0, "we": T0 + 10_000}],
    ]
    at(h, r, 12_000, 4)
    r.tick(T0 + 14_999)
    assert r.take() == []
    r.tick(T0 + 15_000)
    assert r.take() == [[{"vs": [2, 3, 4], "ws": T0 + 5_000, "we": T0 + 15_000}]]
    r.tick(T0 + 30_000)
    assert r.take() == [[{"vs": [4], "ws": T0 + 10_000, "we": T0 + 20_000}]]


def test_sliding_window_emits_on_each_row_with_the_rows_of_the_size_before_it(h: Harness):
    r = window_rule(h, "SLIDINGWINDOW(ss, 10)")
    at(h, r, 1_000, 1)
    assert r.take() == [[{"vs": [1], "ws": T0 - 9_000, "we": T0 + 1_000}]]
    at(h, r, 5_000, 2, 3)
    assert r.take() == [
        [{"vs": [1, 2], "ws": T0 - 5_000, "we": T0 + 5_000}],
        [{"vs": [1, 2, 3], "ws": T0 - 5_000, "we": T0 + 5_000}],
    ]
    at(h, r, 11_000, 4)  # row 1 (at +1 s) is exactly 10 s old: out
    assert r.take() == [[{"vs": [2, 3, 4], "ws": T0 + 1_000, "we": T0 + 11_000}]]
    r.tick(T0 + 100_000)
    assert r.take() == []  # only rows trigger a sliding window


def test_session_window_closes_after_the_timeout_or_at_the_maximum_duration(h: Harness):
    r = window_rule(h, "SESSIONWINDOW(ss, 60, 5)")  # max duration 60 s, timeout 5 s
    at(h, r, 1_000, 1)
    at(h, r, 4_000, 2)
    r.tick(T0 + 8_999)
    assert r.take() == []
    r.tick(T0 + 9_000)  # 5 s after the last row
    assert r.take() == [[{"vs": [1, 2], "ws": T0 + 1_000, "we": T0 + 9_000}]]
    at(h, r, 57_000, 3)
    at(h, r, 59_000, 4)
    r.tick(T0 + 60_000)  # still within the timeout, but the 60 s checkpoint cuts the session
    assert r.take() == [[{"vs": [3, 4], "ws": T0 + 57_000, "we": T0 + 60_000}]]
    at(h, r, 61_000, 5)
    r.tick(T0 + 66_000)
    assert r.take() == [[{"vs": [5], "ws": T0 + 61_000, "we": T0 + 66_000}]]


def test_tumbling_count_window(h: Harness):
    r = window_rule(h, "COUNTWINDOW(3)", select="collect(v) AS vs")
    r.feed([{"v": 1}, {"v": 2}])
    assert r.take() == []
    r.feed([{"v": v} for v in (3, 4, 5, 6, 7)])
    assert r.take() == [[{"vs": [1, 2, 3]}], [{"vs": [4, 5, 6]}]]
    r.feed([{"v": 8}, {"v": 9}])
    assert r.take() == [[{"vs": [7, 8, 9]}]]


def test_count_window_with_hop_emits_the_last_size_rows_every_hop_rows(h: Harness):
    r = window_rule(h, "COUNTWINDOW(5, 2)", select="collect(v) AS vs")
    r.feed([{"v": v} for v in (1, 2, 3, 4)])
    assert r.take() == []  # fewer than 5 rows yet
    r.feed([{"v": v} for v in (5, 6, 7, 8)])
    assert r.take() == [[{"vs": [2, 3, 4, 5, 6]}], [{"vs": [4, 5, 6, 7, 8]}]]


def test_count_window_counts_rows_before_where_as_ekuiper_does(h: Harness):
    h.stream("demo", "v BIGINT")
    r = h.rule("w", "SELECT * FROM demo WHERE v > 1 GROUP BY COUNTWINDOW(3)")
    r.feed([{"v": v} for v in (1, 2, 3, 4)])
    assert r.take() == [[{"v": 2}, {"v": 3}]]


def test_window_without_aggregates_emits_its_rows_in_one_batch(h: Harness):
    h.stream("demo", "v BIGINT, k STRING")
    r = h.rule("w", "SELECT v, k FROM demo WHERE v > 1 GROUP BY TUMBLINGWINDOW(ss, 10)")
    at(h, r, 0, 1, 2)
    at(h, r, 5_000, 3)
    r.tick(T0 + 10_000)
    assert r.take() == [[{"v": 2, "k": "a"}, {"v": 3, "k": "a"}]]


def test_group_by_dimensions_having_and_order_by_within_a_window(h: Harness):
    h.stream("demo", "v BIGINT, k STRING")
    r = h.rule(
        "w",
        "SELECT k, count(*) AS c, sum(v) AS s, avg(v) AS a, min(v) AS lo, max(v) AS hi, collect(v) AS vs "
        "FROM demo GROUP BY k, TUMBLINGWINDOW(ss, 10) HAVING count(*) > 1 ORDER BY s DESC",
    )
    r.feed([{"v": 1, "k": "x"}, {"v": 2, "k": "y"}, {"v": 3, "k": "x"}, {"v": 10, "k": "z"}, {"v": 20, "k": "z"}])
    r.feed([{"v": 5, "k": "y"}])
    r.tick(T0 + 10_000)
    assert r.take() == [
        [
            {"k": "z", "c": 2, "s": 30, "a": 15.0, "lo": 10, "hi": 20, "vs": [10, 20]},
            {"k": "y", "c": 2, "s": 7, "a": 3.5, "lo": 2, "hi": 5, "vs": [2, 5]},
            {"k": "x", "c": 2, "s": 4, "a": 2.0, "lo": 1, "hi": 3, "vs": [1, 3]},
        ]
    ]


def test_aggregates_skip_nulls_count_star_does_not_and_plain_columns_take_the_first_row(h: Harness):
    h.stream("demo", "v BIGINT, k STRING")
    r = h.rule(
        "w",
        "SELECT k, count(*) AS n, count(v) AS nv, sum(v) + 1 AS s1, stddev(v) AS sd, v AS first_v "
        "FROM demo GROUP BY TUMBLINGWINDOW(ss, 10) ORDER BY n",
    )
    r.feed([{"v": None, "k": "a"}, {"v": 2, "k": "b"}, {"v": 4, "k": "c"}])
    r.tick(T0 + 10_000)
    assert r.take() == [[{"k": "a", "n": 3, "nv": 2, "s1": 7, "sd": 1.0, "first_v": None}]]


def test_group_by_an_expression_and_order_by_an_alias(h: Harness):
    h.stream("demo", "v BIGINT")
    r = h.rule("w", "SELECT v % 2 AS parity, count(*) AS c FROM demo GROUP BY v % 2, COUNTWINDOW(5) ORDER BY parity")
    r.feed([{"v": v} for v in (1, 2, 3, 4, 5)])
    assert r.take() == [[{"parity": 0, "c": 2}, {"parity": 1, "c": 3}]]


def test_limit_applies_per_window(h: Harness):
    h.stream("demo", "v BIGINT")
    r = h.rule("w", "SELECT v FROM demo GROUP BY COUNTWINDOW(3) ORDER BY v DESC LIMIT 2")
    r.feed([{"v": v} for v in (5, 9, 7, 1, 2, 3)])
    assert r.take() == [[{"v": 9}, {"v": 7}], [{"v": 3}, {"v": 2}]]


def test_event_time_windows_follow_the_watermark_and_drop_late_rows(h: Harness):
    h.stream("demo", "v BIGINT, ts BIGINT", 'TIMESTAMP="ts"')
    r = h.rule(
        "w",
        "SELECT collect(v) AS vs, window_start() AS ws, window_end() AS we FROM demo GROUP BY TUMBLINGWINDOW(ss, 10)",
        options={"isEventTime": True, "lateTolerance": 1000},
    )

    def rows(*pairs):
        r.feed([{"v": v, "ts": T0 + ts} for v, ts in pairs])

    rows((1, 1_000), (2, 9_000))
    rows((3, 10_500))  # watermark 9 500
    r.tick(T0 + 500_000)  # processing time does not matter in event time
    assert r.take() == []
    rows((4, 9_800))  # out of order, but within the tolerance
    rows((5, 11_000))  # watermark 10 000: [T0, T0+10 s) closes
    assert r.take() == [[{"vs": [1, 2, 4], "ws": T0, "we": T0 + 10_000}]]
    rows((6, 5_000))  # behind the watermark: late, dropped
    assert r.status()["op_1_window_0_records_late_total"] == 1
    rows((7, 30_000))
    assert r.take() == [[{"vs": [3, 5], "ws": T0 + 10_000, "we": T0 + 20_000}]]


def test_event_time_accepts_a_datetime_timestamp_column(h: Harness):
    import datetime

    import pyarrow as pa

    h.stream("demo", "v BIGINT, at DATETIME", 'TIMESTAMP="at"')
    r = h.rule(
        "w",
        "SELECT count(*) AS c, window_end() AS we FROM demo GROUP BY TUMBLINGWINDOW(ss, 10)",
        options={"isEventTime": True, "lateTolerance": 0},
    )
    base = datetime.datetime.fromtimestamp(T0 / 1000, tz=datetime.timezone.utc).replace(tzinfo=None)
    schema = pa.schema([("v", pa.int64()), ("at", pa.timestamp("us"))])
    r.feed([{"v": 1, "at": base}, {"v": 2, "at": base + datetime.timedelta(seconds=3)}], schema=schema)
    r.feed([{"v": 3, "at": base + datetime.timedelta(seconds=10)}], schema=schema)
    assert r.take() == [[{"c": 2, "we": T0 + 10_000}]]


def test_a_window_over_its_row_cap_drops_its_oldest_rows_and_counts_them(h: Harness):
    r = window_rule(h, "TUMBLINGWINDOW(ss, 10)", options={"windowMaxRows": 3})
    at(h, r, 0, 1, 2)
    at(h, r, 1_000, 3, 4)
    at(h, r, 2_000, 5)
    r.tick(T0 + 10_000)
    assert r.take() == [[{"vs": [3, 4, 5], "ws": T0, "we": T0 + 10_000}]]
    assert r.status()["op_1_window_0_records_dropped_total"] == 2


def test_a_window_over_its_byte_cap_keeps_only_the_newest_rows_that_fit(h: Harness):
    r = window_rule(h, "TUMBLINGWINDOW(ss, 10)", options={"windowMaxBytes": 64})  # 8-byte v, plus k
    at(h, r, 0, *range(100))
    r.tick(T0 + 10_000)
    (window,) = r.take()
    kept = window[0]["vs"]
    assert 0 < len(kept) < 100 and kept == list(range(100 - len(kept), 100))
    assert r.status()["op_1_window_0_records_dropped_total"] == 100 - len(kept)


def test_a_count_window_is_never_capped_by_the_time_window_limits(h: Harness):
    r = window_rule(h, "COUNTWINDOW(4)", options={"windowMaxRows": 2})
    at(h, r, 0, 1, 2, 3, 4)
    assert [w[0]["vs"] for w in r.take()] == [[1, 2, 3, 4]]
    assert "op_1_window_0_records_dropped_total" not in r.status()
