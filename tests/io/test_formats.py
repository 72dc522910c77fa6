"""FORMAT decoding of a batch of payloads, and the encoders sinks use."""

from __future__ import annotations

import pyarrow as pa
import pytest

from plutino.io.formats import (
    ARROW_JSON_MIN,
    DecodeError,
    bytes_decoder,
    decode,
    encode_delimited_rows,
    encode_json_batch,
    encode_json_rows,
    payload_batch,
    payload_column,
)

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("t", pa.float64())])


def test_json_objects_decode_in_one_pass_with_the_declared_schema():
    payloads = pa.array([b'{"id": 1, "name": "a", "t": 1.5, "other": true}', b'{"id": 2, "t": 3}'], pa.binary())
    batch = decode(payloads, "json", SCHEMA)
    assert batch.schema == SCHEMA
    assert batch.to_pylist() == [{"id": 1, "name": "a", "t": 1.5}, {"id": 2, "name": None, "t": 3.0}]


def test_schemaless_json_takes_the_columns_of_the_data():
    batch = decode([b'{"a": 1}', b'{"a": 2, "b": {"c": [1, 2]}}'], "json")
    assert batch.to_pylist() == [{"a": 1, "b": None}, {"a": 2, "b": {"c": [1, 2]}}]


def test_a_json_array_payload_gives_one_row_per_object_and_pretty_printed_json_is_fine():
    batch = decode([b'{"id": 1}', b'[{"id": 2}, {"id": 3}]', b'{\n  "id": 4\n}'], "json")
    assert batch.column("id").to_pylist() == [1, 2, 3, 4]


def test_broken_payloads_are_reported_one_by_one_and_the_others_kept():
    errors: list[str] = []
    batch = decode([b'{"id": 1}', b'{"id": ', b"42", None, b'{"id": 5}'], "json", on_error=errors.append)
    assert batch.column("id").to_pylist() == [1, 5]
    assert errors == [
        'FORMAT="json" cannot decode message 1 (7 bytes: \'{"id": \'): unexpected end of data: line 1 column 8 '
        "(char 7); the message is skipped",
        "FORMAT=\"json\" cannot decode message 2 (2 bytes: '42'): it is a JSON int, not an object or an array of "
        "objects; the message is skipped",
        'FORMAT="json" cannot decode message 3 (no payload): empty message; the message is skipped',
    ]


def test_without_an_error_handler_a_broken_payload_raises_naming_it():
    with pytest.raises(DecodeError) as err:
        decode([b"{oops", b"[1]"], "json")
    # the parser's own words in the middle vary between orjson releases
    assert str(err.value).startswith("FORMAT=\"json\" cannot decode message 0 (5 bytes: '{oops'): unexpected character")
    assert str(err.value).endswith("line 1 column 2 (char 1) (and 1 more)")


@pytest.mark.parametrize("schema", [SCHEMA, None], ids=["declared", "schemaless"])
def test_json_rows_are_the_same_whichever_parser_the_batch_size_picks(schema):
    # small batches go to orjson, large ones to Arrow's JSON reader (ARROW_JSON_MIN)
    n = ARROW_JSON_MIN + 5
    payloads = [b'{"id": %d, "name": "n%d", "t": %d.25, "x": {"y": [%d]}}' % (i, i % 7, i, i) for i in range(n)]
    large = decode(payloads, "json", schema)
    small = pa.Table.from_batches([decode(payloads[i:i + 100], "json", schema) for i in range(0, n, 100)])
    assert large.num_rows == n
    assert large.schema == small.schema
    assert large.to_pylist() == small.to_pylist()


def test_values_that_do_not_fit_the_declared_type_name_the_field():
    with pytest.raises(DecodeError) as err:
        decode([b'[{"id": "seven"}]'], "json", SCHEMA)
    assert str(err.value).startswith("the values of 'id' do not fit the stream's int64: ")


def test_binary_keeps_the_payload_in_a_column_named_self():
    batch = decode(pa.array([b"\x00\x01", b"raw"], pa.binary()), "binary")
    assert batch.to_pylist() == [{"self": b"\x00\x01"}, {"self": b"raw"}]


def test_delimited_lines_take_the_schema_names_or_col_n():
    assert decode([b"1,a,2.5", b"2,b,3"], "delimited", SCHEMA).to_pylist() == [
        {"id": 1, "name": "a", "t": 2.5},
        {"id": 2, "name": "b", "t": 3.0},
    ]
    assert decode([b"1;x", b"2;y"], "delimited", delimiter=";").to_pylist() == [
        {"col0": 1, "col1": "x"},
        {"col0": 2, "col1": "y"},
    ]


def test_delimited_lines_with_the_wrong_number_of_values_are_skipped_and_named():
    errors: list[str] = []
    batch = decode([b"1,a,2.5", b"", b"2,b", b"3,c,1"], "delimited", SCHEMA, on_error=errors.append)
    assert batch.column("id").to_pylist() == [1, 3]
    assert errors == [
        "FORMAT=\"delimited\" cannot decode message 1 (0 bytes: ''): a delimited message is one non-empty line; "
        "the message is skipped",
        "FORMAT=\"delimited\" cannot decode message 2 (3 bytes: '2,b'): it has 2 values, the stream has 3 "
        "(id, name, t); the message is skipped",
    ]


def test_an_unknown_format_names_the_ones_there_are():
    with pytest.raises(ValueError) as err:
        decode([b"x"], "protobuf")
    assert str(err.value) == 'FORMAT="protobuf" is not one Plutino decodes; use one of: json, binary, delimited'


def test_payload_batches_round_trip_and_other_batches_are_not_bytes_batches():
    batch = payload_batch([b"a", b"b"])
    assert payload_column(batch).to_pylist() == [b"a", b"b"]
    assert payload_column(pa.RecordBatch.from_pylist([{"payload": 1}])) is None
    assert decode(pa.array([], pa.binary()), "json", SCHEMA).schema == SCHEMA


def test_encoders_write_json_as_go_does_and_delimited_lines():
    batch = pa.RecordBatch.from_pylist(
        [{"a": 1, "b": b"\x00\xff", "f": float("nan")}, {"a": None, "b": None, "f": 2.5}]
    )
    assert encode_json_rows(batch) == [b'{"a":1,"b":"AP8=","f":null}', b'{"a":null,"b":null,"f":2.5}']
    assert encode_json_batch(batch) == b'[{"a":1,"b":"AP8=","f":null},{"a":null,"b":null,"f":2.5}]'
    plain = pa.RecordBatch.from_pylist([{"a": 1, "s": "x"}, {"a": 2, "s": "y"}])
    assert encode_delimited_rows(plain, "|") == [b"1|x", b"2|y"]
    assert encode_delimited_rows(pa.RecordBatch.from_pylist([{"s": "a,b"}])) == [b'"a,b"']


def test_the_engine_hook_decodes_a_bytes_batch_and_refuses_an_unknown_format():
    decoder = bytes_decoder("JSON", SCHEMA)
    rows = decoder(payload_batch([b'[{"id": 1}, {"id": 2, "name": "b"}]']))
    assert rows.schema == SCHEMA and rows.column("id").to_pylist() == [1, 2]
    with pytest.raises(ValueError):
        bytes_decoder("xml", None)
