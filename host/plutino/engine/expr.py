"""Compiled expressions: a closure over a RecordBatch, its type, and its constant value.

An :class:`Expr` is what the compiler makes of each SQL expression and what the operators
evaluate, once per batch: ``expr.eval(batch)`` returns an Arrow array, or a scalar for a value
that is the same on every row (operators broadcast it only where a column is needed).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import pyarrow as pa

from .types import is_numeric

Value = Any  # pa.Array | pa.Scalar
Eval = Callable[[pa.RecordBatch], Value]


class Expr:
    """A compiled expression: ``eval(batch)``, its result ``type`` (None: known at run time)
    and, for a constant, its pre-built scalar ``const``."""

    __slots__ = ("eval", "type", "const", "sql")

    def __init__(self, fn: Eval, type_: pa.DataType | None, const: pa.Scalar | None = None, sql: str = "") -> None:
        self.eval = fn
        self.type = type_
        self.const: Any = const  # a pa.Scalar, or None when not constant (see is_const)
        self.sql = sql

    @property
    def is_const(self) -> bool:
        return self.const is not None


def constant(value: pa.Scalar, sql: str = "") -> Expr:
    return Expr(lambda batch: value, value.type, value, sql)


def column(name: str, type_: pa.DataType | None, shown: str) -> Expr:
    def get(batch: pa.RecordBatch) -> Value:
        i = batch.schema.get_field_index(name)
        return batch.column(i) if i >= 0 else pa.nulls(batch.num_rows)

    return Expr(get, type_, sql=shown)


def broadcast(value: Value, length: int) -> pa.Array:
    """An array of ``length`` rows: scalars repeated, chunked arrays combined."""
    if isinstance(value, pa.Scalar):
        return pa.repeat(value, length)
    if isinstance(value, pa.ChunkedArray):
        return value.combine_chunks()
    return value


def as_array(value: Value) -> pa.Array:
    """A value as an array; a scalar becomes a length-1 array (how constants cross the ABI)."""
    if isinstance(value, pa.Scalar):
        return pa.repeat(value, 1)
    if isinstance(value, pa.ChunkedArray):
        return value.combine_chunks()
    return value


def common_type(types: Sequence[pa.DataType]) -> pa.DataType | None:
    """The one type CASE branches are cast to: equal types, or numbers widened; else None."""
    concrete = [t for t in types if not pa.types.is_null(t)]
    if not concrete:
        return pa.null()
    first = concrete[0]
    if all(t == first for t in concrete):
        return first
    if all(is_numeric(t) for t in concrete):
        return pa.float64() if any(pa.types.is_floating(t) for t in concrete) else pa.int64()
    return None


__all__ = ["Eval", "Expr", "Value", "as_array", "broadcast", "column", "common_type", "constant"]
