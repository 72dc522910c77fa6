"""The date and time built-ins: now, tstamp, format_time, year ... second, day_of_week, ...

Their datetime arguments may be datetime columns, bigint milliseconds since the epoch, or
strings; formats are eKuiper's (``YYYY-MM-dd HH:mm:ss``), translated to strftime.
"""

from __future__ import annotations

import time
from typing import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from .builtin_table import Value, as_py, define

_ONE = pa.scalar(1, pa.int64())  # an Arrow scalar: a Python 1 is converted at each call


def _as_timestamp(v: Value) -> Value:
    """Datetime arguments may be datetime columns or bigint milliseconds since the epoch."""
    t = v.type
    if pa.types.is_integer(t):
        return pc.cast(v, pa.int64()).cast(pa.timestamp("ms"))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pc.cast(v, pa.timestamp("us"))
    return v


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
    return pc.strftime(ts, format=time_format_to_strftime(str(as_py(a[1]))))


def _now(a: Sequence[Value], n: int) -> Value:
    return pa.scalar(time.time_ns() // 1000, pa.timestamp("us"))


def _tstamp(a: Sequence[Value], n: int) -> Value:
    return pa.scalar(time.time_ns() // 1_000_000, pa.int64())


define("now", "datetime", 0, "now()", _now, volatile=True)
define("tstamp", "datetime", 0, "tstamp()", _tstamp, volatile=True)
define("format_time", "datetime", 2, 'format_time(t, "YYYY-MM-dd HH:mm:ss")', _format_time, const_args=(1,))
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
    define(_name, "datetime", 1, f"{_name}(t)", (lambda f: lambda a, n: f(_as_timestamp(a[0])))(_fn))
define(
    "day_of_week",
    "datetime",
    1,
    "day_of_week(t)",
    lambda a, n: pc.add(pc.day_of_week(_as_timestamp(a[0]), count_from_zero=True, week_start=7), _ONE),
)
define(
    "to_seconds",
    "datetime",
    1,
    "to_seconds(t)",
    lambda a, n: pc.cast(pc.cast(_as_timestamp(a[0]), pa.timestamp("s"), safe=False), pa.int64()),
)
define(
    "from_unix_time",
    "datetime",
    1,
    "from_unix_time(seconds)",
    lambda a, n: pc.cast(pc.cast(a[0], pa.int64()), pa.timestamp("s")).cast(pa.timestamp("us")),
)


__all__ = ["time_format_to_strftime"]
