"""The table of built-in SQL functions: what a built-in is, and how a family defines one.

Each family of built-ins (:mod:`.math_functions`, :mod:`.string_functions`,
:mod:`.json_functions`, :mod:`.time_functions`, and the casts, window functions and aggregates
in :mod:`.functions`) calls :func:`define` for each of its functions when it is imported;
:mod:`.functions` imports them all and answers the lookups. The helpers here are what the
families share for reading Arrow arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence, Union

import pyarrow as pa
import pyarrow.compute as pc

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


BUILTINS: dict[str, Builtin] = {}  # by lower-case name


def define(
    name: str, family: str, args: int | tuple[int, int], usage: str, impl: Impl | None = None, **kw: Any
) -> None:
    """Add a built-in: ``args`` is its argument count, or (min, max) with max -1 for any."""
    lo, hi = (args, args) if isinstance(args, int) else args
    BUILTINS[name] = Builtin(name, family, lo, hi, usage, impl, **kw)


def as_py(v: Value) -> Any:
    """A constant argument's Python value (an argument that is a column stays as it is)."""
    return v.as_py() if isinstance(v, pa.Scalar) else v


def as_string(v: Value) -> Value:
    """``v`` as a string column or scalar (cast when it is not one)."""
    return v if pa.types.is_string(v.type) or pa.types.is_large_string(v.type) else pc.cast(v, pa.string())


def list_item(lists: Value, index: int) -> Value:
    """Element ``index`` of each list, null where a list is shorter (list_element would raise)."""
    return pc.list_element(pc.list_slice(lists, index, index + 1, return_fixed_size_list=True), 0)


__all__ = ["BUILTINS", "Builtin", "Impl", "Value", "as_py", "as_string", "define", "list_item"]
