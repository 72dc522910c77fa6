"""FORMAT: turning message payloads into rows, and rows into payloads.

A *bytes* source (MQTT, HTTP push, a file of lines, a native source whose batch has one binary
column ``payload``) hands the host a batch of payloads; :func:`decode` turns the whole batch into
rows in one go, by the stream's FORMAT:

``json``
    each payload is one JSON object (one row) or a JSON array of objects (one row each, as in
    eKuiper). A batch of fewer than ``ARROW_JSON_MIN`` payloads is parsed by orjson in a single
    call over all payloads, then built into columns. A larger one is joined into one
    newline-delimited buffer and parsed by Arrow's JSON reader (C++, multi-threaded) with the
    stream's schema when it has one; when that fails (a payload is an array, spans lines oddly,
    or is broken) it goes to orjson too. Only a batch holding a broken payload is looked at
    payload by payload, to say which one is broken and keep the others.
``binary``
    the payload itself, in the stream's one (``bytea``) field, or in a column named ``self`` for
    a schemaless stream (eKuiper's rule).
``delimited``
    each payload is one line of values separated by ``delimiter`` (default ``,``), parsed by
    Arrow's CSV reader over the whole batch. Columns are named by the stream's schema, in
    order, or ``col0``, ``col1``, ... for a schemaless stream (whose types are inferred).

Decoding never silently loses a message: a payload that does not decode is reported through
``on_error`` (or raises when there is none), naming its position and its first bytes.

The other direction, for sinks: :func:`encode_json_rows`, :func:`encode_json_batch` and
:func:`encode_delimited_rows`.
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import decimal
import io
from typing import Any, Callable, Sequence

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json

FORMATS = ("json", "binary", "delimited")

OnError = Callable[[str], None]

_MIN_BLOCK = 1 << 20
_BROKEN = object()


class DecodeError(ValueError):
    """No payload of the batch could be used; the message says why."""


_ZERO = pa.scalar(0, pa.int32())  # an Arrow scalar: a Python 0 is converted at each call

def decode(
    payloads: Any,
    fmt: str = "json",
    schema: pa.Schema | None = None,
    *,
    delimiter: str = ",",
    on_error: OnError | None = None,
) -> pa.RecordBatch:
    """The rows of a batch of payloads (see the module docstring).

    ``schema``: the stream's declared schema, or None (schemaless: columns come from the data).
    ``on_error(message)`` is called once per payload that does not decode, and the other
    payloads are kept; without it the first such payload raises :class:`DecodeError`.
    """
    array = _as_binary(payloads)
    fmt = (fmt or "json").lower()
    if fmt == "json":
        return _decode_json(array, schema, on_error)
    if fmt == "binary":  # the stream's one bytea field holds the payload; schemaless: column self (eKuiper's)
        name = schema[0].name if schema is not None and len(schema) == 1 else "self"
        return pa.RecordBatch.from_arrays([array], names=[name])
    if fmt == "delimited":
        return _decode_delimited(array, schema, delimiter or ",", on_error)
    raise ValueError(f'FORMAT="{fmt}" is not one Plutino decodes; use one of: {", ".join(FORMATS)}')


def bytes_decoder(
    fmt: str, schema: pa.Schema | None, *, delimiter: str = ",", on_error: OnError | None = None
) -> Callable[[pa.RecordBatch], pa.RecordBatch]:
    """The engine's hook: decode a bytes source's batch (its ``payload`` column) into the
    stream's rows, the same for every bytes source (MQTT, HTTP push, file lines, native)."""
    fmt = (fmt or "json").lower()
    if fmt not in FORMATS:
        raise ValueError(f'FORMAT="{fmt}" is not one Plutino decodes; use one of: {", ".join(FORMATS)}')

    def run(batch: pa.RecordBatch) -> pa.RecordBatch:
        return decode(batch.column(0), fmt, schema, delimiter=delimiter, on_error=on_error)

    return run


def payload_column(batch: pa.RecordBatch) -> pa.Array | None:
    """The ``payload`` column of a bytes source's batch, or None when the batch is not one."""
    if batch.num_columns != 1 or batch.schema[0].name != "payload":
        return None
    t = batch.schema[0].type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        return batch.column(0)
    return None


def payload_batch(payloads: Sequence[bytes]) -> pa.RecordBatch:
    """A bytes source's batch: one binary column ``payload``."""
    return pa.RecordBatch.from_arrays([pa.array(payloads, pa.binary())], names=["payload"])


PAYLOAD_SCHEMA = pa.schema([pa.field("payload", pa.binary())])


# -- helpers -------------------------------------------------------------------------------


def _as_binary(payloads: Any) -> pa.Array:
    if isinstance(payloads, pa.ChunkedArray):
        payloads = payloads.combine_chunks() if payloads.num_chunks != 1 else payloads.chunk(0)
    if not isinstance(payloads, pa.Array):
        payloads = pa.array([p.encode() if isinstance(p, str) else p for p in payloads], pa.binary())
    if (
        pa.types.is_large_binary(payloads.type)
        or pa.types.is_string(payloads.type)
        or pa.types.is_large_string(payloads.type)
    ):
        payloads = payloads.cast(pa.binary())
    if not pa.types.is_binary(payloads.type):
        raise TypeError(f"payloads must be binary or string values, got Arrow type {payloads.type}")
    return payloads


def _joined(array: pa.Array) -> pa.Buffer:
    """Every payload followed by a newline, as one buffer (no Python loop)."""
    n = len(array)
    lines = pc.binary_join_element_wise(array, pa.scalar(b"", pa.binary()), b"\n")
    return pc.binary_join(pa.ListArray.from_arrays(pa.array([0, n], pa.int32()), lines), b"")[0].as_buffer()


def _block_size(array: pa.Array) -> int:
    longest = pc.max(pc.binary_length(array)).as_py() or 0
    return max(_MIN_BLOCK, 2 * longest + 2)


def _problem(payloads: list[Any], index: int, reason: str) -> tuple[int, str]:
    """(index, "message 3 (12 bytes: '{bad ...') ... reason") for a payload that does not decode."""
    payload = payloads[index]
    if payload is None:
        return index, f"message {index} (no payload): {reason}"
    shown = bytes(payload[:60]).decode("utf-8", "replace")
    more = "..." if len(payload) > 60 else ""
    return index, f"message {index} ({len(payload)} bytes: {shown!r}{more}): {reason}"


def _report(problems: list[tuple[int, str]], on_error: OnError | None, fmt: str) -> None:
    if not problems:
        return
    problems = sorted(problems)
    if on_error is None:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DecodeError(f'FORMAT="{fmt}" cannot decode {problems[0][1]}{more}')
    for _, text in problems:
        on_error(f'FORMAT="{fmt}" cannot decode {text}; the message is skipped')


def _empty(schema: pa.Schema | None) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema or pa.schema([]))


# -- json ----------------------------------------------------------------------------------


#: From this many payloads a batch goes to Arrow's JSON reader first. Below, orjson is faster:
#: the reader costs ~90 us a call before it reads a byte (1 payload: 98 us against orjson's 12;
#: 100: 1.3 us a payload against 0.4; 1000: 0.42 against 0.30; 10000: even), and an MQTT
#: source's batches are mostly small (bench/mqtt.py).
ARROW_JSON_MIN = 10_000


def _decode_json(array: pa.Array, schema: pa.Schema | None, on_error: OnError | None) -> pa.RecordBatch:
    n = len(array)
    if n == 0:
        return _empty(schema)
    if n >= ARROW_JSON_MIN and array.null_count == 0:
        fast = _json_arrow(array, schema)
        if fast is not None:
            return fast
    return _json_orjson(array, schema, on_error)


def _json_arrow(array: pa.Array, schema: pa.Schema | None) -> pa.RecordBatch | None:
    """Arrow's JSON reader over all payloads; None when the batch is not one object per line."""
    n = len(array)
    parse = (
        pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
        if schema is not None
        else pa_json.ParseOptions()
    )
    try:
        table = pa_json.read_json(
            pa.BufferReader(_joined(array)),
            parse_options=parse,
            read_options=pa_json.ReadOptions(block_size=_block_size(array)),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != n:
        return None
    if table.num_columns == 0:
        return _empty(schema)
    return table.combine_chunks().to_batches()[0]


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")  # as Go's encoding/json does
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def _json_orjson(array: pa.Array, schema: pa.Schema | None, on_error: OnError | None) -> pa.RecordBatch:
    values: list[bytes | None] = array.to_pylist()
    documents: list[Any] | None = None
    if array.null_count == 0:
        try:  # one call for the whole batch
            documents = orjson.loads(b"[" + b",".join(values) + b"]")  # type: ignore[arg-type]
            if len(documents) != len(values):
                documents = None
        except orjson.JSONDecodeError:
            documents = None
    errors: list[tuple[int, str]] = []
    if documents is None:  # find the broken payloads, keep the others
        documents = []
        for i, v in enumerate(values):
            try:
                if v is None:
                    raise ValueError("empty message")
                documents.append(orjson.loads(v))
            except (orjson.JSONDecodeError, ValueError) as exc:
                errors.append(_problem(values, i, str(exc).splitlines()[0]))
                documents.append(_BROKEN)
    rows: list[dict[str, Any]] = []
    for i, doc in enumerate(documents):
        if isinstance(doc, dict):
            rows.append(doc)
        elif isinstance(doc, list) and all(isinstance(d, dict) for d in doc):
            rows.extend(doc)
        elif doc is not _BROKEN:
            kind = "null" if doc is None else type(doc).__name__
            errors.append(_problem(values, i, f"it is a JSON {kind}, not an object or an array of objects"))
    _report(errors, on_error, "json")
    if not rows:
        return _empty(schema)
    return rows_to_batch(rows, schema)


def rows_to_batch(rows: list[dict[str, Any]], schema: pa.Schema | None) -> pa.RecordBatch:
    """Rows (dicts) as a batch: the schema's columns when given, else the union of the keys."""
    if schema is None:
        names: dict[str, None] = {}
        for row in rows:
            names.update(dict.fromkeys(row))
        fields = [(name, None) for name in names]
    else:
        fields = [(f.name, f.type) for f in schema]
    arrays = []
    for name, typ in fields:
        column = [row.get(name) for row in rows]
        try:
            arrays.append(pa.array(column, typ))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            if typ is not None:
                try:
                    arrays.append(pa.array(column).cast(typ))
                    continue
                except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                    pass
            want = f"the stream's {typ}" if typ is not None else "one type"
            raise DecodeError(
                f"the values of '{name}' do not fit {want}: {str(exc).splitlines()[0]}; "
                "send one type per field, or declare the field in the stream"
            ) from None
    if not arrays:
        return _empty(schema)
    return pa.RecordBatch.from_arrays(arrays, names=[n for n, _ in fields])


# -- delimited -----------------------------------------------------------------------------


def _decode_delimited(
    array: pa.Array, schema: pa.Schema | None, delimiter: str, on_error: OnError | None
) -> pa.RecordBatch:
    n = len(array)
    if n == 0:
        return _empty(schema)
    if len(delimiter) != 1:
        raise ValueError(f"DELIMITER must be one character, got {delimiter!r}")
    errors: list[tuple[int, str]] = []
    kept = None
    bad = pc.or_(pc.is_null(array), pc.or_(pc.equal(pc.binary_length(array), _ZERO), pc.match_substring(array, "\n")))
    bad = pc.fill_null(bad, True)
    if pc.any(bad).as_py():
        values = array.to_pylist()
        for i in pc.indices_nonzero(bad).to_pylist():
            errors.append(_problem(values, i, "a delimited message is one non-empty line"))
        kept = pc.indices_nonzero(pc.invert(bad)).to_pylist()
        array = array.filter(pc.invert(bad))
    if schema is not None:
        names = schema.names
        types = {f.name: f.type for f in schema}
    else:
        first = array[0].as_py() if len(array) else b""
        names = [f"col{i}" for i in range(first.count(delimiter.encode()) + 1)]
        types = {}
    lines = array.to_pylist() if kept is None else [None] * n
    if kept is not None:
        for j, i in enumerate(kept):
            lines[i] = array[j].as_py()

    def invalid(row: Any) -> str:
        line = (row.number or 0) - 1
        index = line if kept is None else (kept[line] if 0 <= line < len(kept) else -1)
        reason = f"it has {row.actual_columns} values, the stream has {row.expected_columns} ({', '.join(names)})"
        errors.append(_problem(lines, index, reason) if index >= 0 else (n, f"a message ({row.text[:60]!r}): {reason}"))
        return "skip"

    table = None
    if len(array):
        try:
            table = pa_csv.read_csv(
                pa.BufferReader(_joined(array)),
                read_options=pa_csv.ReadOptions(column_names=names, block_size=_block_size(array), use_threads=False),
                parse_options=pa_csv.ParseOptions(delimiter=delimiter, invalid_row_handler=invalid),
                convert_options=pa_csv.ConvertOptions(column_types=types, strings_can_be_null=False),
            )
        except pa.ArrowInvalid as exc:
            raise DecodeError(f'cannot decode the batch as FORMAT="delimited": {str(exc).splitlines()[0]}') from None
    _report(errors, on_error, "delimited")
    if table is None or table.num_rows == 0:
        return _empty(schema)
    return table.combine_chunks().to_batches()[0]


# -- encoding (sinks) ----------------------------------------------------------------------

_ORJSON_OPTS = orjson.OPT_NAIVE_UTC | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """JSON bytes of a Python value from ``to_pylist()`` (bytes as base64, as Go writes them)."""
    return orjson.dumps(value, default=_json_default, option=_ORJSON_OPTS)


def encode_json_rows(batch: pa.RecordBatch) -> list[bytes]:
    """One JSON object per row."""
    return [orjson.dumps(row, default=_json_default, option=_ORJSON_OPTS) for row in batch.to_pylist()]


def encode_json_batch(batch: pa.RecordBatch) -> bytes:
    """The whole batch as one JSON array of objects (eKuiper's output when sendSingle is false)."""
    return orjson.dumps(batch.to_pylist(), default=_json_default, option=_ORJSON_OPTS)


def encode_delimited_rows(batch: pa.RecordBatch, delimiter: str = ",", header: bool = False) -> list[bytes]:
    """One line per row, the values joined by ``delimiter`` (quoted only where a value holds the
    delimiter, a quote or a newline); with ``header`` the column names come first."""
    out = io.BytesIO()
    try:
        pa_csv.write_csv(
            batch, out, pa_csv.WriteOptions(include_header=header, delimiter=delimiter, quoting_style="none")
        )
        return out.getvalue().splitlines()
    except pa.ArrowInvalid:  # some value needs quotes: quote just those (Arrow would quote every string)
        text = io.StringIO()
        writer = csv.writer(text, delimiter=delimiter, lineterminator="", quoting=csv.QUOTE_MINIMAL)
        rows = zip(*(c.to_pylist() for c in batch.columns), strict=True)
        lines = []
        for row in ([batch.schema.names] if header else []) + list(rows):
            text.seek(0)
            text.truncate()
            writer.writerow(["" if v is None else v for v in row])
            lines.append(text.getvalue().encode())
        return lines


__all__ = [
    "ARROW_JSON_MIN",
    "FORMATS",
    "PAYLOAD_SCHEMA",
    "DecodeError",
    "bytes_decoder",
    "decode",
    "dumps",
    "encode_delimited_rows",
    "encode_json_batch",
    "encode_json_rows",
    "payload_batch",
    "payload_column",
    "rows_to_batch",
]
