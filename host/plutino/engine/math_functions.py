"""The math built-ins: abs, round, mod, power, trigonometry, bit operations, rand, ...

Each maps to a pyarrow.compute kernel over the whole batch; ``mod`` truncates toward zero with
the sign of its first argument, as Go and C do (and as the ``%`` operator, which uses it).
"""

from __future__ import annotations

import math
from typing import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from .builtin_table import Value, as_py, define

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
    define(_name, "math", 1, f"{_name}(x)", (lambda f: lambda a, n: f(a[0]))(_fn))


def _mod(a: Sequence[Value], n: int) -> Value:
    x, y = a
    if pa.types.is_integer(x.type) and pa.types.is_integer(y.type):
        return pc.subtract(x, pc.multiply(pc.divide(x, y), y))  # truncated, sign of x (as Go and C)
    x, y = pc.cast(x, pa.float64()), pc.cast(y, pa.float64())
    return pc.subtract(x, pc.multiply(pc.trunc(pc.divide(x, y)), y))


def _round(a: Sequence[Value], n: int) -> Value:
    digits = int(as_py(a[1])) if len(a) > 1 else 0
    return pc.round(a[0], ndigits=digits, round_mode="half_towards_infinity")


def _degrees(a: Sequence[Value], n: int) -> Value:
    return pc.multiply(pc.cast(a[0], pa.float64()), 180.0 / math.pi)


def _radians(a: Sequence[Value], n: int) -> Value:
    return pc.multiply(pc.cast(a[0], pa.float64()), math.pi / 180.0)


def _rand(a: Sequence[Value], n: int) -> Value:
    return pc.random(n)


define("atan2", "math", 2, "atan2(y, x)", lambda a, n: pc.atan2(a[0], a[1]))
define("power", "math", 2, "power(x, y)", lambda a, n: pc.power(a[0], a[1]))
define("mod", "math", 2, "mod(x, y)", _mod)
define("round", "math", (1, 2), "round(x[, digits])", _round, const_args=(1,))
define("pi", "math", 0, "pi()", lambda a, n: pa.scalar(math.pi))
define("degrees", "math", 1, "degrees(x)", _degrees)
define("radians", "math", 1, "radians(x)", _radians)
define("rand", "math", 0, "rand()", _rand, volatile=True)
define("bitand", "math", 2, "bitand(x, y)", lambda a, n: pc.bit_wise_and(a[0], a[1]))
define("bitor", "math", 2, "bitor(x, y)", lambda a, n: pc.bit_wise_or(a[0], a[1]))
define("bitxor", "math", 2, "bitxor(x, y)", lambda a, n: pc.bit_wise_xor(a[0], a[1]))


__all__: list[str] = []  # the functions are reached through plutino.engine.functions
