"""The string and hashing built-ins: concat, length, trim, pad, substring, regexp_*, md5, sha*, ...

String functions are pyarrow.compute's utf8 kernels over the whole batch. The hash functions
have no Arrow kernel: hashlib runs per value (C code, ~1 us a value).
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from .builtin_table import Impl, Value, as_py, as_string, define, list_item


def _concat(a: Sequence[Value], n: int) -> Value:
    return pc.binary_join_element_wise(*[as_string(v) for v in a], "")


def _pad(left: bool) -> Impl:
    def impl(a: Sequence[Value], n: int) -> Value:
        spaces = " " * int(as_py(a[1]))
        parts = [spaces, a[0]] if left else [a[0], spaces]
        return pc.binary_join_element_wise(*parts, "")

    return impl


def _substring(a: Sequence[Value], n: int) -> Value:
    start = int(as_py(a[1]))
    stop = int(as_py(a[2])) if len(a) > 2 else None
    return pc.utf8_slice_codeunits(a[0], start, stop)


def _split_value(a: Sequence[Value], n: int) -> Value:
    return list_item(pc.split_pattern(a[0], as_py(a[1])), int(as_py(a[2])))


# -- string --------------------------------------------------------------------------------
define("concat", "string", (1, -1), "concat(s1, s2, ...)", _concat)
define("length", "string", 1, "length(s)", lambda a, n: pc.utf8_length(a[0]))
define("numbytes", "string", 1, "numbytes(s)", lambda a, n: pc.binary_length(a[0]))
define("lower", "string", 1, "lower(s)", lambda a, n: pc.utf8_lower(a[0]))
define("upper", "string", 1, "upper(s)", lambda a, n: pc.utf8_upper(a[0]))
define("trim", "string", 1, "trim(s)", lambda a, n: pc.utf8_trim_whitespace(a[0]))
define("ltrim", "string", 1, "ltrim(s)", lambda a, n: pc.utf8_ltrim_whitespace(a[0]))
define("rtrim", "string", 1, "rtrim(s)", lambda a, n: pc.utf8_rtrim_whitespace(a[0]))
define("reverse", "string", 1, "reverse(s)", lambda a, n: pc.utf8_reverse(a[0]))
define("lpad", "string", 2, "lpad(s, n)", _pad(True), const_args=(1,))
define("rpad", "string", 2, "rpad(s, n)", _pad(False), const_args=(1,))
define("substring", "string", (2, 3), "substring(s, start[, end])", _substring, const_args=(1, 2))
define(
    "startswith",
    "string",
    2,
    "startswith(s, prefix)",
    lambda a, n: pc.starts_with(a[0], pattern=as_py(a[1])),
    const_args=(1,),
)
define(
    "endswith",
    "string",
    2,
    "endswith(s, suffix)",
    lambda a, n: pc.ends_with(a[0], pattern=as_py(a[1])),
    const_args=(1,),
)
define(
    "indexof",
    "string",
    2,
    "indexof(s, sub)",
    lambda a, n: pc.find_substring(a[0], pattern=as_py(a[1])),
    const_args=(1,),
)
define(
    "regexp_matches",
    "string",
    2,
    "regexp_matches(s, regex)",
    lambda a, n: pc.match_substring_regex(a[0], pattern=as_py(a[1])),
    const_args=(1,),
)
define(
    "regexp_replace",
    "string",
    3,
    "regexp_replace(s, regex, replacement)",
    lambda a, n: pc.replace_substring_regex(a[0], pattern=as_py(a[1]), replacement=as_py(a[2])),
    const_args=(1, 2),
)
define("split_value", "string", 3, "split_value(s, separator, index)", _split_value, const_args=(1, 2))


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
    define(_name, "hashing", 1, f"{_name}(s)", _hash(_name))


__all__: list[str] = []  # the functions are reached through plutino.engine.functions
