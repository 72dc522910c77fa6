"""From what a source produces to the stream's rows.

A *bytes* source (one binary column ``payload``: MQTT, files, sockets, native bytes sources)
is decoded by the stream's FORMAT with :mod:`plutino.io.formats`, all payloads of a batch in
one call. A *tuple* source declares its own columns.

Then, for a stream with a schema, each batch is conformed to it: declared columns in declared
order and types, missing ones null, undeclared ones dropped. A schemaless stream passes
batches through as they come.
"""

from __future__ import annotations

from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

from plutino.io.formats import bytes_decoder

from .streams import StreamDef

Decoder = Callable[[pa.RecordBatch], pa.RecordBatch]


def is_bytes_schema(schema: pa.Schema) -> bool:
    return (
        len(schema) == 1
        and schema[0].name == "payload"
        and (pa.types.is_binary(schema[0].type) or pa.types.is_large_binary(schema[0].type))
    )


def make_decoder(stream: StreamDef, source_schema: pa.Schema,
                 on_error: Callable[[str], None] | None = None) -> Decoder:
    """The per-batch conversion for this stream and source.

    Payloads are decoded by :func:`plutino.io.formats.bytes_decoder`, the one decoder every
    bytes source shares (MQTT, HTTP push, files, native sources); a payload that does not
    decode goes to ``on_error`` and the rest of the batch is kept."""
    target = stream.schema
    steps: list[Decoder] = []
    if is_bytes_schema(source_schema):
        steps.append(bytes_decoder(stream.format, target, delimiter=stream.option("DELIMITER") or ",",
                                   on_error=on_error))
    if target is not None:
        steps.append(lambda b: conform(b, target))
    if not steps:
        return lambda b: b
    if len(steps) == 1:
        return steps[0]
    first, second = steps
    return lambda b: second(first(b))


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


__all__ = ["conform", "is_bytes_schema", "make_decoder"]
