"""Stream field types: eKuiper's type names and the Arrow types that carry them.

A stream declares its fields with eKuiper's names (``bigint``, ``float``, ``string``,
``datetime``, ``boolean``, ``bytea``, ``array(<type>)``, ``struct(<field> <type>, ...)``);
every batch of that stream is conformed to the Arrow schema built here, so operators and
plugins see one type per column.
"""

from __future__ import annotations

import pyarrow as pa

#: Scalar type names, lower case, as written in CREATE STREAM.
SCALAR_TYPES: dict[str, pa.DataType] = {
    "bigint": pa.int64(),
    "float": pa.float64(),
    "string": pa.string(),
    "datetime": pa.timestamp("us"),
    "boolean": pa.bool_(),
    "bytea": pa.binary(),
}

#: Every type name CREATE STREAM accepts (the two compound ones take parameters).
TYPE_NAMES: tuple[str, ...] = (*SCALAR_TYPES, "array", "struct")


def type_name(t: pa.DataType) -> str:
    """The eKuiper spelling of an Arrow type, for DESCRIBE and error messages."""
    for name, candidate in SCALAR_TYPES.items():
        if t == candidate:
            return name
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "bytea"
    if pa.types.is_timestamp(t):
        return "datetime"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"array({type_name(t.value_type)})"
    if pa.types.is_struct(t):
        inner = ", ".join(f"{t.field(i).name} {type_name(t.field(i).type)}" for i in range(t.num_fields))
        return f"struct({inner})"
    return str(t)


def is_numeric(t: pa.DataType | None) -> bool:
    return t is not None and (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


__all__ = ["SCALAR_TYPES", "TYPE_NAMES", "is_numeric", "type_name"]
