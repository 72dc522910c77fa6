"""SELECT expressions, WHERE, and the built-in functions, checked on real Arrow batches.

These run through :func:`plutino.engine.query.query`: the rule engine's planner and operators,
synchronously, without threads.
"""

from __future__ import annotations

import datetime

import pyarrow as pa
import pytest

from plutino.engine.functions import (
    BUILTIN_NAMES,
    builtins,
    parse_json_path,
    time_format_to_strftime,
)
from plutino.engine.query import query

SCHEMA = pa.schema(
    [
        ("t", pa.float64()),
        ("h", pa.int64()),
        ("name", pa.string()),
        ("st", pa.struct([("a", pa.int64()), ("b", pa.string())])),
        ("arr", pa.list_(pa.int64())),
        ("ts", pa.int64()),
    ]
)
ROWS = [
    {"t": 1.5, "h": 3, "name": "abc", "st": {"a": 1, "b": "x"}, "arr": [1, 2], "ts": 1000},
    {"t": 4.5, "h": None, "name": "XYZ", "st": None, "arr": [], "ts": 2000},
    {"t": -2.0, "h": 10, "name": None, "st": {"a": 5, "b": None}, "arr": None, "ts": 3000},
]


def q(sql: str) -> list[dict]:
    return query(sql, [pa.RecordBatch.from_pylist(ROWS, schema=SCHEMA)], schema=SCHEMA).to_pylist()


def col(sql: str, name: str | None = None) -> list:
    rows = q(sql)
    key = name or next(iter(rows[0])) if rows else name
    return [r[key] for r in rows]


def test_select_star_and_where_keep_the_stream_columns():
    assert q("SELECT * FROM s WHERE h > 5") == [ROWS[2]]


def test_aliases_arithmetic_and_default_names():
    assert q("SELECT t * 2 + 1 AS t2, h, h - 1, upper(name) FROM s WHERE t > 1") == [
        {"t2": 4.0, "h": 3, "kuiper_field_0": 2, "upper": "ABC"},
        {"t2": 10.0, "h": None, "kuiper_field_0": None, "upper": "XYZ"},
    ]


def test_integer_division_truncates_and_modulo_keeps_the_dividends_sign():
    rows = query(
        "SELECT a / b AS d, a % b AS m, mod(a, b) AS f FROM s",
        [pa.RecordBatch.from_pydict({"a": [7, -7, 7], "b": [2, 2, -2]})],
    ).to_pylist()
    assert rows == [{"d": 3, "m": 1, "f": 1}, {"d": -3, "m": -1, "f": -1}, {"d": -3, "m": 1, "f": 1}]


def test_comparisons_and_three_valued_logic():
    assert q(
        "SELECT h > 2 AND t < 2 AS a, h > 2 OR t > 2 AS o, NOT (h > 3) AS n, h != 3 AS ne, h <> 3 AS ne2 FROM s"
    ) == [
        {"a": True, "o": True, "n": True, "ne": False, "ne2": False},
        {"a": False, "o": True, "n": None, "ne": None, "ne2": None},
        {"a": True, "o": True, "n": False, "ne": True, "ne2": True},
    ]


def test_is_null_in_like_between():
    assert q(
        "SELECT h IS NULL AS n, h IS NOT NULL AS nn, h IN (3, 4) AS i, h NOT IN (3) AS ni, "
        "name LIKE 'a_c' AS l, name NOT LIKE '%Z' AS nl, t BETWEEN 0 AND 2 AS b FROM s"
    ) == [
        {"n": False, "nn": True, "i": True, "ni": False, "l": True, "nl": True, "b": True},
        {"n": True, "nn": False, "i": False, "ni": True, "l": False, "nl": False, "b": False},
        {"n": False, "nn": True, "i": False, "ni": True, "l": None, "nl": None, "b": False},
    ]


def test_in_with_column_items_compares_each():
    assert col("SELECT h IN (ts, 3) AS i FROM s") == [True, None, False]


def test_case_searched_simple_and_widened_types():
    assert q(
        "SELECT CASE WHEN t > 2 THEN 'hot' WHEN t > 0 THEN 'mild' ELSE 'cold' END AS c, "
        "CASE h WHEN 3 THEN 'three' WHEN 10 THEN 'ten' END AS s, CASE WHEN t > 0 THEN t ELSE h END AS w FROM s"
    ) == [
        {"c": "mild", "s": "three", "w": 1.5},
        {"c": "hot", "s": None, "w": 4.5},
        {"c": "cold", "s": "ten", "w": 10.0},
    ]


def test_nested_struct_fields_and_array_indexes():
    assert q("SELECT st.a, st->b, s.st.a AS qualified, arr[0] AS first, arr[5] AS missing FROM s") == [
        {"a": 1, "b": "x", "qualified": 1, "first": 1, "missing": None},
        {"a": None, "b": None, "qualified": None, "first": None, "missing": None},
        {"a": 5, "b": None, "qualified": 5, "first": None, "missing": None},
    ]


def test_constants_are_folded_once():
    from plutino.engine.planner import plan_query
    from plutino.engine.plugin_functions import NoPlugins
    from plutino.engine.streams import parse_create_stream

    stream = parse_create_stream('CREATE STREAM s (a BIGINT) WITH (TYPE="memory")')
    plan = plan_query("SELECT 1 + 2 * 3 AS k, upper('x') AS u, a + (2 * 5) AS b FROM s", {"s": stream}, NoPlugins())
    k, u, _ = plan.fields
    assert k.expr.const == pa.scalar(7) and u.expr.const == pa.scalar("X")
    assert q("SELECT 1 + 2 * 3 AS k FROM s") == [{"k": 7}] * 3


def test_schemaless_stream_learns_columns_from_each_batch_and_missing_ones_are_null():
    batches = [
        pa.RecordBatch.from_pydict({"a": [1, 2]}),
        pa.RecordBatch.from_pydict({"b": ["x"], "a": [5]}),
        pa.RecordBatch.from_pydict({"c": [True]}),
    ]
    assert query("SELECT a, b FROM s WHERE a > 1 OR a IS NULL", batches).to_pylist() == [
        {"a": 2, "b": None},
        {"a": 5, "b": "x"},
        {"a": None, "b": None},
    ]


def test_declared_schema_conforms_batches():
    schema = pa.schema([("a", pa.float64()), ("b", pa.string())])
    batch = pa.RecordBatch.from_pydict({"a": [1, 2], "extra": [0, 0]})
    assert query("SELECT * FROM s", [batch], schema=schema).to_pylist() == [
        {"a": 1.0, "b": None},
        {"a": 2.0, "b": None},
    ]


def test_order_by_and_limit_without_window_apply_per_batch():
    assert col("SELECT h FROM s ORDER BY h DESC LIMIT 2") == [10, 3]


# -- built-in functions --------------------------------------------------------------------


def test_math_functions():
    assert q(
        "SELECT abs(t), ceil(t), floor(t), round(t) AS r, round(1.25, 1) AS r1, sqrt(h) AS sq, power(h, 2) AS p, "
        "sign(t) AS sg, log(100) AS lg, ln(1) AS l1, exp(0) AS e, bitand(h, 2) AS ba, degrees(pi()) AS dg FROM s "
        "WHERE h = 3"
    ) == [
        {
            "abs": 1.5,
            "ceil": 2.0,
            "floor": 1.0,
            "r": 2.0,
            "r1": 1.3,
            "sq": pytest.approx(3**0.5),
            "p": 9,
            "sg": 1.0,
            "lg": 2.0,
            "l1": 0.0,
            "e": 1.0,
            "ba": 2,
            "dg": pytest.approx(180.0),
        }
    ]


def test_round_goes_half_away_from_zero_like_ekuiper():
    rows = query("SELECT round(x) AS r FROM s", [pa.RecordBatch.from_pydict({"x": [0.5, 1.5, 2.5, -0.5]})])
    assert rows.column("r").to_pylist() == [1.0, 2.0, 3.0, -1.0]


def test_string_functions():
    assert q(
        "SELECT concat(name, '-', h) AS c, length(name) AS l, lower(name) AS lo, trim('  a ') AS tr, "
        "ltrim(' a') AS lt, rtrim('a ') AS rt, lpad(name, 2) AS lp, rpad(name, 1) AS rp, substring(name, 1) AS s1, "
        "substring(name, 0, 2) AS s2, startswith(name, 'a') AS sw, endswith(name, 'c') AS ew, "
        "indexof(name, 'b') AS ix, "
        "reverse(name) AS rv, numbytes('é') AS nb, regexp_matches(name, '^[a-z]+$') AS rm, "
        "regexp_replace(name, '[ab]', '_') AS rr, split_value('a,b,c', ',', 2) AS sv FROM s WHERE h = 3"
    ) == [
        {
            "c": "abc-3",
            "l": 3,
            "lo": "abc",
            "tr": "a",
            "lt": "a",
            "rt": "a",
            "lp": "  abc",
            "rp": "abc ",
            "s1": "bc",
            "s2": "ab",
            "sw": True,
            "ew": True,
            "ix": 1,
            "rv": "cba",
            "nb": 2,
            "rm": True,
            "rr": "__c",
            "sv": "c",
        }
    ]


def test_conversion_functions():
    assert q(
        "SELECT cast(t, 'bigint') AS a, cast(h, 'string') AS b, cast(h, 'float') AS c, cast('true', 'boolean') AS d, "
        "cast(ts, 'datetime') AS e, coalesce(h, 0) AS f, isnull(h) AS g FROM s"
    ) == [
        {"a": 1, "b": "3", "c": 3.0, "d": True, "e": datetime.datetime(1970, 1, 1, 0, 0, 1), "f": 3, "g": False},
        {"a": 4, "b": None, "c": None, "d": True, "e": datetime.datetime(1970, 1, 1, 0, 0, 2), "f": 0, "g": True},
        {"a": -2, "b": "10", "c": 10.0, "d": True, "e": datetime.datetime(1970, 1, 1, 0, 0, 3), "f": 10, "g": False},
    ]


def test_hashing_functions():
    assert q("SELECT md5(name) AS m, sha1(name) AS s1, sha256(name) AS s2 FROM s WHERE h = 3") == [
        {
            "m": "900150983cd24fb0d6963f7d28e17f72",
            "s1": "a9993e364706816aba3e25717850c26c9cd0d89d",
            "s2": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        }
    ]
    assert col("SELECT md5(name) AS m FROM s WHERE h = 10") == [None]


def test_json_functions():
    assert q(
        "SELECT json_path_query(st, '$.b') AS j, json_path_exists(st, '$.a') AS e, "
        "json_path_query(parse_json('{\"a\": {\"b\": [5, 6]}}'), '$.a.b[1]') AS k FROM s"
    ) == [{"j": "x", "e": True, "k": 6}, {"j": None, "e": False, "k": 6}, {"j": None, "e": True, "k": 6}]
    rows = query(
        "SELECT json_path_query(parse_json(doc), '$.x.y') AS y FROM s",
        [pa.RecordBatch.from_pydict({"doc": ['{"x": {"y": 1}}', '{"x": {}}', None]})],
    )
    assert rows.column("y").to_pylist() == [1, None, None]
    assert parse_json_path("$.a['b c'][2]") == ["a", "b c", 2]


def test_date_time_functions():
    assert q(
        "SELECT format_time(ts, 'YYYY-MM-dd HH:mm:ss') AS f, year(ts) AS y, month(ts) AS mo, day(ts) AS d, "
        "hour(ts) AS hh, minute(ts) AS mi, second(ts) AS se, day_of_week(ts) AS dw, day_of_year(ts) AS dy, "
        "to_seconds(ts) AS sec, from_unix_time(100) AS fu FROM s WHERE h = 3"
    ) == [
        {
            "f": "1970-01-01 00:00:01",
            "y": 1970,
            "mo": 1,
            "d": 1,
            "hh": 0,
            "mi": 0,
            "se": 1,
            "dw": 5,
            "dy": 1,
            "sec": 1,
            "fu": datetime.datetime(1970, 1, 1, 0, 1, 40),
        }
    ]
    assert time_format_to_strftime("yyyy/MM/dd hh:mm a") == "%Y/%m/%d %I:%M %p"
    now = q("SELECT tstamp() AS t, now() AS n FROM s")[0]
    assert now["t"] > 1_600_000_000_000 and now["n"].year >= 2024


def test_volatile_functions_are_evaluated_per_batch_not_folded():
    rows = q("SELECT rand() AS r FROM s")
    assert all(0 <= r["r"] < 1 for r in rows) and len({r["r"] for r in rows}) == 3


def test_builtin_names_cover_every_builtin_and_the_window_functions():
    names = {b.name for b in builtins()}
    assert names <= BUILTIN_NAMES
    assert {"count", "sum", "avg", "min", "max", "collect", "tumblingwindow", "countwindow", "cast"} <= BUILTIN_NAMES
    assert all(n == n.lower() for n in BUILTIN_NAMES)


def test_every_builtin_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "functions.md").read_text()
    missing = [b.name for b in builtins() if f"`{b.name}(" not in doc]
    assert missing == []
