"""Built-in SQL functions, each one vectorized over a whole batch with pyarrow.compute.

A scalar built-in is ``impl(args, length) -> Array | Scalar``: arguments are pyarrow arrays
(columns) or scalars (constants, built once when the rule is planned), and the result is an
array of ``length`` rows or a scalar the engine broadcasts. An aggregate built-in names the
pyarrow hash aggregation that computes it per group. ``docs/functions.md`` lists them all.

:data:`BUILTIN_NAMES` is what the function registry checks so that no plugin can shadow a
built-in: a name here always means the built-in.

:mod:`.builtin_table` holds the table; each family is defined in its own module
(:mod:`.math_functions`, :mod:`.string_functions`, :mod:`.json_functions`,
:mod:`.time_functions`); the casts, the window functions and the aggregates, which the
compiler and the planner treat specially, are defined here.
"""

from __future__ import annotations

from typing import Sequence

import pyarrow as pa
import pyarrow.compute as pc

# importing a family defines its built-ins
from . import json_functions, math_functions, meta_functions, string_functions, time_functions  # noqa: F401
from .builtin_table import BUILTINS as _BUILTINS
from .builtin_table import Builtin, Impl, Value, as_py, define, list_item  # noqa: F401  (Impl, list_item: as before)
from .json_functions import parse_json_path
from .math_functions import _mod  # noqa: F401  (the compiler's % operator)
from .time_functions import time_format_to_strftime
from .types import SCALAR_TYPES

# -- conversion ----------------------------------------------------------------------------
CAST_TYPES = dict(SCALAR_TYPES)


def _cast(a: Sequence[Value], n: int) -> Value:
    target = CAST_TYPES[str(as_py(a[1])).lower()]
    value = a[0]
    if pa.types.is_timestamp(target) and pa.types.is_integer(value.type):
        return pc.cast(pc.cast(value, pa.int64()), pa.timestamp("ms")).cast(target)
    if pa.types.is_integer(target) and pa.types.is_timestamp(value.type):
        return pc.cast(pc.cast(value, pa.timestamp("ms")), pa.int64())
    if pa.types.is_integer(target) and pa.types.is_floating(value.type):
        return pc.cast(pc.trunc(value), target)
    return pc.cast(value, target)


define(
    "cast",
    "conversion",
    2,
    'cast(x, "bigint" | "float" | "string" | "boolean" | "datetime" | "bytea")',
    _cast,
    const_args=(1,),
)
define("coalesce", "conversion", (1, -1), "coalesce(x, y, ...)", lambda a, n: pc.coalesce(*a))
define("isnull", "conversion", 1, "isnull(x)", lambda a, n: pc.is_null(a[0]))

# -- window --------------------------------------------------------------------------------
# Their values come from the window being emitted; the planner wires them, impl is unused.
define("window_start", "window", 0, "window_start()", window_only=True)
define("window_end", "window", 0, "window_end()", window_only=True)

# -- aggregates ----------------------------------------------------------------------------
define("count", "aggregate", 1, "count(*) or count(x)", agg="count")
define("sum", "aggregate", 1, "sum(x)", agg="sum")
define("avg", "aggregate", 1, "avg(x)", agg="mean")
define("min", "aggregate", 1, "min(x)", agg="min")
define("max", "aggregate", 1, "max(x)", agg="max")
define("collect", "aggregate", 1, "collect(x)", agg="list")
define("stddev", "aggregate", 1, "stddev(x)", agg="stddev", agg_options=pc.VarianceOptions(ddof=0))
define("stddevs", "aggregate", 1, "stddevs(x)", agg="stddev", agg_options=pc.VarianceOptions(ddof=1))
define("var", "aggregate", 1, "var(x)", agg="variance", agg_options=pc.VarianceOptions(ddof=0))
define("vars", "aggregate", 1, "vars(x)", agg="variance", agg_options=pc.VarianceOptions(ddof=1))

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
