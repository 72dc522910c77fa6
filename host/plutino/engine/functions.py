"""Built-in SQL functions, each one vectorized over a whole batch with pyarrow.compute.

A scalar built-in is ``impl(args, length) -> Array | Scalar``: arguments are pyarrow arrays
(columns) or scalars (constants, built once when the rule is planned), and the result is an
array of ``length`` rows or a scalar the engine broadcasts. An aggregate built-in names the
pyarrow hash aggregation that computes it per group. ``docs/functions.md`` lists them all.

:data:`BUILTIN_NAMES` is what the function registry checks so that no plugin can shadow a
built-in: a name here always means the built-in.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence, Union

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from .types import SCALAR_TYPES

Value = Union[pa.Array, pa.ChunkedArray, pa.Scalar]
Impl = Callable[[Sequence[Value], int], Value]


@dataclass(frozen=True)
class Builtin:
    """One built-in function.

    ``const_args``: argument positions that must be constants in the SQL (a pattern, a type
    name, a width), because pyarrow takes them as options rather than as columns.
    """

    name: str
    family: str
    min_args: int
    max_args: int  # -1: any number
    usage: str
    impl: Impl | None = None
    agg: str | None = None  # pyarrow hash aggregation (aggregate functions)
    agg_options: Any = None
    const_args: tuple[int, ...] = ()
    volatile: bool = False
    window_only: bool = False  # window_start() / window_end()

    @property
    def aggregate(self) -> bool:
        return self.agg is not None


_BUILTINS: dict[str, Builtin] = {}


def _def(name: str, family: str, args: int | tuple[int, int], usage: str, impl: Impl | None = None, **kw: Any) -> None:
    lo, hi = (args, args) if isinstance(args, int) else args
    _BUILTINS[name] = Builtin(name, family, lo, hi, usage, impl, **kw)


def _py(v: Value) -> Any:
    return v.as_py() if isinstance(v, pa.Scalar) else v


def _as_timestamp(v: Value) -> Value:
    """Datetime arguments may be datetime columns or bigint milliseconds since the epoch."""
    t = v.type
    if pa.types.is_integer(t):
        return pc.cast(v, pa.int64()).cast(pa.timestamp("ms"))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pc.cast(v, pa.timestamp("us"))
    return v


def _as_string(v: Value) -> Value:
    return v if pa.types.is_string(v.type) or pa.types.is_large_string(v.type) else pc.cast(v, pa.string())


# -- math ----------------------------------------------------------------------------------
for _name, _fn in {
    "abs": pc.abs,
    "acos": pc.acos,
    "asin": pc.asin,
    "atan": pc.atan,
    "cos": pc.cos,
    "sin": pc.sin,
    "tan": pc.tan,
    "exp": pc.exp,
    "ln": pc.ln,
    "log": pc.log10,
    "sqrt": pc.sqrt,
    "sign": pc.sign,
    "ceil": pc.ceil,
    "ceiling": pc.ceil,
    "floor": pc.floor,
    "bitnot": pc.bit_wise_not,
}.items():
    _def(_name, "math", 1, f"{_name}(x)", (lambda f: lambda a, n: f(a[0]))(_fn))


def _mod(a: Sequence[Value], n: int) -> Value:
    x, y = a
    if pa.types.is_integer(x.type) and pa.types.is_integer(y.type):
        return pc.subtract(x, pc.multiply(pc.divide(x, y), y))  # truncated, sign of x (as Go and C)
    x, y = pc.cast(x, pa.float64()), pc.cast(y, pa.float64())
    return pc.subtract(x, pc.multiply(pc.trunc(pc.divide(x, y)), y))


def _round(a: Sequence[Value], n: int) -> Value:
    digits = int(_py(a[1])) if len(a) > 1 else 0
    return pc.round(a[0], ndigits=digits, round_mode="half_towards_infinity")


def _degrees(a: Sequence[Value], n: int) -> Value:
    return pc.multiply(pc.cast(a[0], pa.float64()), 180.0 / math.pi)


def _radians(a: Sequence[Value], n: int) -> Value:
    return pc.multiply(pc.cast(a[0], pa.float64()), math.pi / 180.0)


def _rand(a: Sequence[Value], n: int) -> Value:
    return pc.random(n)


_def("atan2", "math", 2, "atan2(y, x)", lambda a, n: pc.atan2(a[0], a[1]))
_def("power", "math", 2, "power(x, y)", lambda a, n: pc.power(a[0], a[1]))
_def("mod", "math", 2, "mod(x, y)", _mod)
_def("round", "math", (1, 2), "round(x[, digits])", _round, const_args=(1,))
_def("pi", "math", 0, "pi()", lambda a, n: pa.scalar(math.pi))
_def("degrees", "math", 1, "degrees(x)", _degrees)
_def("radians", "math", 1, "radians(x)", _radians)
_def("rand", "math", 0, "rand()", _rand, volatile=True)
_def("bitand", "math", 2, "bitand(x, y)", lambda a, n: pc.bit_wise_and(a[0], a[1]))
_def("bitor", "math", 2, "bitor(x, y)", lambda a, n: pc.bit_wise_or(a[0], a[1]))
_def("bitxor", "math", 2, "bitxor(x, y)", lambda a, n: pc.bit_wise_xor(a[0], a[1]))


# -- string --------------------------------------------------------------------------------
def _concat(a: Sequence[Value], n: int) -> Value:
    return pc.binary_join_element_wise(*[_as_string(v) for v in a], "")


def _pad(left: bool) -> Impl:
    def impl(a: Sequence[Value], n: int) -> Value:
        spaces = " " * int(_py(a[1]))
        parts = [spaces, a[0]] if left else [a[0], spaces]
        return pc.binary_join_element_wise(*parts, "")

    return impl


def _substring(a: Sequence[Value], n: int) -> Value:
    start = int(_py(a[1]))
    stop = int(_py(a[2])) if len(a) > 2 else None
    return pc.utf8_slice_codeunits(a[0], start, stop)


def list_item(lists: Value, index: int) -> Value:
    """Element ``index`` of each list, null where a list is shorter (list_element would raise)."""
    return pc.list_element(pc.list_slice(lists, index, index + 1, return_fixed_size_list=True), 0)


def _split_value(a: Sequence[Value], n: int) -> Value:
    return list_item(pc.split_pattern(a[0], _py(a[1])), int(_py(a[2])))


_def("concat", "string", (1, -1), "concat(s1, s2, ...)", _concat)
_def("length", "string", 1, "length(s)", lambda a, n: pc.utf8_length(a[0]))
_def("numbytes", "string", 1, "numbytes(s)", lambda a, n: pc.binary_length(a[0]))
_def("lower", "string", 1, "lower(s)", lambda a, n: pc.utf8_lower(a[0]))
_def("upper", "string", 1, "upper(s)", lambda a, n: pc.utf8_upper(a[0]))
_def("trim", "string", 1, "trim(s)", lambda a, n: pc.utf8_trim_whitespace(a[0]))
_def("ltrim", "string", 1, "ltrim(s)", lambda a, n: pc.utf8_ltrim_whitespace(a[0]))
_def("rtrim", "string", 1, "rtrim(s)", lambda a, n: pc.utf8_rtrim_whitespace(a[0]))
_def("reverse", "string", 1, "reverse(s)", lambda a, n: pc.utf8_reverse(a[0]))
_def("lpad", "string", 2, "lpad(s, n)", _pad(True), const_args=(1,))
_def("rpad", "string", 2, "rpad(s, n)", _pad(False), const_args=(1,))
_def("substring", "string", (2, 3), "substring(s, start[, end])", _substring, const_args=(1, 2))
_def(
    "startswith",
    "string",
    2,
    "startswith(s, prefix)",
    lambda a, n: pc.starts_with(a[0], pattern=_py(a[1])),
    const_args=(1,),
)
_def(
    "endswith", "string", 2, "endswith(s, suffix)", lambda a, n: pc.ends_with(a[0], pattern=_py(a[1])), const_args=(1,)
)
_def(
    "indexof", "string", 2, "indexof(s, sub)", lambda a, n: pc.find_substring(a[0], pattern=_py(a[1])), const_args=(1,)
)
_def(
    "regexp_matches",
    "string",
    2,
    "regexp_matches(s, regex)",
    lambda a, n: pc.match_substring_regex(a[0], pattern=_py(a[1])),
    const_args=(1,),
)
_def(
    "regexp_replace",
    "string",
    3,
    "regexp_replace(s, regex, replacement)",
    lambda a, n: pc.replace_substring_regex(a[0], pattern=_py(a[1]), replacement=_py(a[2])),
    const_args=(1, 2),
)
_def("split_value", "string", 3, "split_value(s, separator, index)", _split_value, const_args=(1, 2))


# -- conversion ----------------------------------------------------------------------------
CAST_TYPES = dict(SCALAR_TYPES)


def _cast(a: Sequence[Value], n: int) -> Value:
    target = CAST_TYPES[str(_py(a[1])).lower()]
    value = a[0]
    if pa.types.is_timestamp(target) and pa.types.is_integer(value.type):
        return pc.cast(pc.cast(value, pa.int64()), pa.timestamp("ms")).cast(target)
    if pa.types.is_integer(target) and pa.types.is_timestamp(value.type):
        return pc.cast(pc.cast(value, pa.timestamp("ms")), pa.int64())
    if pa.types.is_integer(target) and pa.types.is_floating(value.type):
        return pc.cast(pc.trunc(value), target)
    return pc.cast(value, target)


_def(
    "cast",
    "conversion",
    2,
    'cast(x, "bigint" | "float" | "string" | "boolean" | "datetime" | "bytea")',
    _cast,
    const_args=(1,),
)
_def("coalesce", "conversion", (1, -1), "coalesce(x, y, ...)", lambda a, n: pc.coalesce(*a))
_def("isnull", "conversion", 1, "isnull(x)", lambda a, n: pc.is_null(a[0]))


# -- hashing -------------------------------------------------------------------------------
def _hash(algorithm: str) -> Impl:
    # pyarrow has no hash kernels; hashlib runs per value (C code, ~1 us a value).
    def impl(a: Sequence[Value], n: int) -> Value:
        v = a[0]
        if isinstance(v, pa.Scalar):
            raw = v.as_py()
            return pa.scalar(None if raw is None else _digest(algorithm, raw), pa.string())
        values = v.to_pylist()
        return pa.array([None if x is None else _digest(algorithm, x) for x in values], pa.string())

    return impl


def _digest(algorithm: str, value: Any) -> str:
    data = value if isinstance(value, bytes) else str(value).encode()
    return hashlib.new(algorithm, data).hexdigest()


for _name in ("md5", "sha1", "sha256", "sha384", "sha512"):
    _def(_name, "hashing", 1, f"{_name}(s)", _hash(_name))


# -- JSON ----------------------------------------------------------------------------------
_PATH_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def parse_json_path(path: str) -> list[str | int]:
    """``$.a.b[0]`` -> ``["a", "b", 0]``; raises ValueError for paths beyond this subset."""
    if not path.startswith("$"):
        raise ValueError(f"a JSON path starts with '$', got {path!r}")
    steps: list[str | int] = []
    pos = 1
    while pos < len(path):
        m = _PATH_STEP.match(path, pos)
        if not m:
            raise ValueError(f"unsupported JSON path {path!r} at {path[pos:]!r}; use $.field, $.a.b and $.list[0]")
        name, index, quoted1, quoted2 = m.groups()
        steps.append(int(index) if index is not None else (name or quoted1 or quoted2))
        pos = m.end()
    return steps


def _parse_json(v: Value) -> Value:
    """JSON text (one object per value) to a struct column, parsed by Arrow's JSON reader."""
    if isinstance(v, pa.ChunkedArray):
        v = v.combine_chunks()
    if isinstance(v, pa.Scalar):
        return _parse_json(pa.array([v.as_py()], v.type))[0]
    text = pc.fill_null(_as_string(v), "null")
    whole = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(text)], pa.int32()), text), "\n")[0].as_py()
    table = pa_json.read_json(io.BytesIO(whole.encode()))
    if table.num_rows != len(v):
        raise ValueError(f"parse_json: expected {len(v)} JSON objects, read {table.num_rows}")
    if not table.num_columns:
        return pa.nulls(len(v), pa.struct([]))
    return pa.StructArray.from_arrays([c.combine_chunks() for c in table.columns], names=table.column_names)


def _json_query(v: Value, steps: list[str | int]) -> Value:
    if pa.types.is_string(v.type) or pa.types.is_large_string(v.type):
        v = _parse_json(v)
    for step in steps:
        t = v.type
        if isinstance(step, int):
            if not (pa.types.is_list(t) or pa.types.is_large_list(t)):
                return pa.nulls(len(v)) if not isinstance(v, pa.Scalar) else pa.scalar(None)
            v = list_item(v, step)
        else:
            if not pa.types.is_struct(t) or t.get_field_index(step) < 0:
                return pa.nulls(len(v)) if not isinstance(v, pa.Scalar) else pa.scalar(None)
            v = pc.struct_field(v, [t.get_field_index(step)])
    return v


_def("parse_json", "json", 1, "parse_json(s)", lambda a, n: _parse_json(a[0]))
_def(
    "json_path_query",
    "json",
    2,
    'json_path_query(x, "$.a.b")',
    lambda a, n: _json_query(a[0], parse_json_path(str(_py(a[1])))),
    const_args=(1,),
)
_def(
    "json_path_exists",
    "json",
    2,
    'json_path_exists(x, "$.a.b")',
    lambda a, n: pc.is_valid(_json_query(a[0], parse_json_path(str(_py(a[1]))))),
    const_args=(1,),
)


# -- date and time -------------------------------------------------------------------------
_TIME_TOKENS = [
    ("YYYY", "%Y"),
    ("yyyy", "%Y"),
    ("YY", "%y"),
    ("yy", "%y"),
    ("MM", "%m"),
    ("dd", "%d"),
    ("HH", "%H"),
    ("hh", "%I"),
    ("mm", "%M"),
    ("ss", "%S"),
    ("a", "%p"),
]


def time_format_to_strftime(fmt: str) -> str:
    """eKuiper's time format (``YYYY-MM-dd HH:mm:ss``) as a strftime format."""
    out, i = [], 0
    while i < len(fmt):
        for token, code in _TIME_TOKENS:
            if fmt.startswith(token, i):
                out.append(code)
                i += len(token)
                break
        else:
            out.append("%%" if fmt[i] == "%" else fmt[i])
            i += 1
    return "".join(out)


def _format_time(a: Sequence[Value], n: int) -> Value:
    ts = pc.cast(_as_timestamp(a[0]), pa.timestamp("s"), safe=False)
    return pc.strftime(ts, format=time_format_to_strftime(str(_py(a[1]))))


def _now(a: Sequence[Value], n: int) -> Value:
    return pa.scalar(time.time_ns() // 1000, pa.timestamp("us"))


def _tstamp(a: Sequence[Value], n: int) -> Value:
    return pa.scalar(time.time_ns() // 1_000_000, pa.int64())


_def("now", "datetime", 0, "now()", _now, volatile=True)
_def("tstamp", "datetime", 0, "tstamp()", _tstamp, volatile=True)
_def("format_time", "datetime", 2, 'format_time(t, "YYYY-MM-dd HH:mm:ss")', _format_time, const_args=(1,))
for _name, _fn in {
    "year": pc.year,
    "month": pc.month,
    "day": pc.day,
    "day_of_month": pc.day,
    "hour": pc.hour,
    "minute": pc.minute,
    "second": pc.second,
    "day_of_year": pc.day_of_year,
}.items():
    _def(_name, "datetime", 1, f"{_name}(t)", (lambda f: lambda a, n: f(_as_timestamp(a[0])))(_fn))
_def(
    "day_of_week",
    "datetime",
    1,
    "day_of_week(t)",
    lambda a, n: pc.add(pc.day_of_week(_as_timestamp(a[0]), count_from_zero=True, week_start=7), 1),
)
_def(
    "to_seconds",
    "datetime",
    1,
    "to_seconds(t)",
    lambda a, n: pc.cast(pc.cast(_as_timestamp(a[0]), pa.timestamp("s"), safe=False), pa.int64()),
)
_def(
    "from_unix_time",
    "datetime",
    1,
    "from_unix_time(seconds)",
    lambda a, n: pc.cast(pc.cast(a[0], pa.int64()), pa.timestamp("s")).cast(pa.timestamp("us")),
)

# -- window --------------------------------------------------------------------------------
# Their values come from the window being emitted; the planner wires them, impl is unused.
_def("window_start", "window", 0, "window_start()", window_only=True)
_def("window_end", "window", 0, "window_end()", window_only=True)

# -- aggregates ----------------------------------------------------------------------------
_def("count", "aggregate", 1, "count(*) or count(x)", agg="count")
_def("sum", "aggregate", 1, "sum(x)", agg="sum")
_def("avg", "aggregate", 1, "avg(x)", agg="mean")
_def("min", "aggregate", 1, "min(x)", agg="min")
_def("max", "aggregate", 1, "max(x)", agg="max")
_def("collect", "aggregate", 1, "collect(x)", agg="list")
_def("stddev", "aggregate", 1, "stddev(x)", agg="stddev", agg_options=pc.VarianceOptions(ddof=0))
_def("stddevs", "aggregate", 1, "stddevs(x)", agg="stddev", agg_options=pc.VarianceOptions(ddof=1))
_def("var", "aggregate", 1, "var(x)", agg="variance", agg_options=pc.VarianceOptions(ddof=0))
_def("vars", "aggregate", 1, "vars(x)", agg="variance", agg_options=pc.VarianceOptions(ddof=1))

#: Window functions of GROUP BY; reserved too, so no plugin takes their names.
WINDOW_FUNCTIONS = ("tumblingwindow", "hoppingwindow", "slidingwindow", "sessionwindow", "countwindow")

#: Every name that always means a built-in (lower case). The registry refuses plugin
#: functions with these names.
BUILTIN_NAMES: frozenset[str] = frozenset(_BUILTINS) | frozenset(WINDOW_FUNCTIONS)


def builtin(name: str) -> Builtin | None:
    """The built-in called ``name`` (case-insensitive), or None."""
    return _BUILTINS.get(name.lower())


def builtins() -> list[Builtin]:
    """All built-ins, by family then name (for docs and GET /plugins/udfs)."""
    return sorted(_BUILTINS.values(), key=lambda b: (b.family, b.name))


__all__ = [
    "BUILTIN_NAMES",
    "Builtin",
    "CAST_TYPES",
    "WINDOW_FUNCTIONS",
    "builtin",
    "builtins",
    "parse_json_path",
    "time_format_to_strftime",
]
