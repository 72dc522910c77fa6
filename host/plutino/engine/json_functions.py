"""The JSON built-ins: parse_json, json_path_query and json_path_exists, and the JSON path subset.

JSON text is parsed by Arrow's JSON reader into a struct column; a path (``$.a.b[0]``) then
walks struct fields and list items, giving null where a value has no such field or item.
"""

from __future__ import annotations

import io
import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from .builtin_table import Value, as_py, as_string, define, list_item

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
    text = pc.fill_null(as_string(v), "null")
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


define("parse_json", "json", 1, "parse_json(s)", lambda a, n: _parse_json(a[0]))
define(
    "json_path_query",
    "json",
    2,
    'json_path_query(x, "$.a.b")',
    lambda a, n: _json_query(a[0], parse_json_path(str(as_py(a[1])))),
    const_args=(1,),
)
define(
    "json_path_exists",
    "json",
    2,
    'json_path_exists(x, "$.a.b")',
    lambda a, n: pc.is_valid(_json_query(a[0], parse_json_path(str(as_py(a[1]))))),
    const_args=(1,),
)


__all__ = ["parse_json_path"]
