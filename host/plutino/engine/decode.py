"""From what a source produces to the stream's rows.

A *bytes* source (one binary column ``payload``: MQTT, files, sockets) is decoded by the
stream's FORMAT: ``json`` parses every payload as one JSON object with Arrow's JSON reader,
all payloads of a batch in one call; ``binary`` keeps the bytes in a column named ``self``, as
eKuiper does. A *tuple* source declares its own columns.

Then, for a stream with a schema, each batch is conformed to it: declared columns in declared
order and types, missing ones null, undeclared ones dropped. A schemaless stream passes
batches through as they come.
"""

from __future__ import annotations

from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from .streams import StreamDef

Decoder = Callable[[pa.RecordBatch], pa.RecordBatch]


def is_bytes_schema(schema: pa.Schema) -> bool:
    return (
        len(schema) == 1
        and schema[0].name == "payload"
        and (pa.types.is_binary(schema[0].type) or pa.types.is_large_binary(schema[0].type))
    )


def make_decoder(stream: StreamDef, source_schema: pa.Schema) -> Decoder:
    """The per-batch conversion for this stream and source."""
    target = stream.schema
    steps: list[Decoder] = []
    if is_bytes_schema(source_schema):
        if stream.format == "json":
            steps.append(lambda b: decode_json(b.column(0), target))
        else:
            steps.append(lambda b: pa.RecordBatch.from_arrays([b.column(0)], names=["self"]))
    if target is not None:
        steps.append(lambda b: conform(b, target))
    if not steps:
        return lambda b: b
    if len(steps) == 1:
        return steps[0]
    first, second = steps
    return lambda b: second(first(b))


def decode_json(payloads: pa.Array, schema: pa.Schema | None) -> pa.RecordBatch:
    """One JSON object per payload -> one row per payload."""
    n = len(payloads)
    if n == 0:
        return pa.RecordBatch.from_pylist([], schema=schema or pa.schema([]))
    if isinstance(payloads, pa.ChunkedArray):
        payloads = payloads.combine_chunks()
    text = pc.fill_null(payloads.cast(pa.binary()), b"{}")
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, n], pa.int32()), text), b"\n")[0]
    options = (
        pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
        if schema is not None
        else pa_json.ParseOptions()
    )
    try:
        table = pa_json.read_json(pa.BufferReader(joined.as_buffer()), parse_options=options)
    except pa.ArrowInvalid:
        table = None
    if table is None or table.num_rows != n:  # a payload spanning lines (pretty-printed JSON)
        options = (
            pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore", newlines_in_values=True)
            if schema is not None
            else pa_json.ParseOptions(newlines_in_values=True)
        )
        try:
            table = pa_json.read_json(pa.BufferReader(joined.as_buffer()), parse_options=options)
        except pa.ArrowInvalid as exc:
            raise ValueError(
                f'cannot decode the payloads as JSON (FORMAT="json"): {str(exc).splitlines()[0]}'
            ) from None
        if table.num_rows != n:
            raise ValueError(f"expected one JSON object per message, got {table.num_rows} objects in {n} messages")
    table = table.combine_chunks()
    if table.num_columns == 0:  # only empty objects: nothing to process
        return pa.RecordBatch.from_pylist([], schema=pa.schema([]))
    return table.to_batches()[0]


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with exactly the columns of ``schema``; raises ValueError naming a column
    whose values cannot be converted."""
    if batch.schema.equals(schema):
        return batch
    n = batch.num_rows
    arrays = []
    for field in schema:
        i = batch.schema.get_field_index(field.name)
        if i < 0:
            arrays.append(pa.nulls(n, field.type))
            continue
        col = batch.column(i)
        if col.type != field.type:
            try:
                if pa.types.is_timestamp(field.type) and pa.types.is_integer(col.type):
                    col = pc.cast(pc.cast(col, pa.int64()), pa.timestamp("ms")).cast(field.type)
                else:
                    col = col.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise ValueError(
                    f"column '{field.name}' holds {col.type} values that do not convert to the "
                    f"stream's {field.type}: {str(exc).splitlines()[0]}"
                ) from None
        arrays.append(col)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


__all__ = ["conform", "decode_json", "is_bytes_schema", "make_decoder"]
