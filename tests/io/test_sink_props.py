"""eKuiper's common sink properties: fields, sendSingle, dataTemplate, format, resendInterval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from plutino.io.memory import MemoryBroker, MemorySinkPlugin
from plutino.io.sink_props import ResendingSink, SinkProps, with_sink_props
from plutino_contract.protocols import Context

BATCH = pa.RecordBatch.from_pylist([{"id": 1, "t": 20.5, "name": "a"}, {"id": 2, "t": 21.0, "name": "b,c"}])
CTX = Context(plugin_name="test")


def props(**config: Any) -> SinkProps:
    p, rest = SinkProps.split("test sink", config)
    assert rest == {}
    return p


@pytest.mark.parametrize(
    "config, expected",
    [
        ({}, [b'[{"id":1,"t":20.5,"name":"a"},{"id":2,"t":21.0,"name":"b,c"}]']),
        ({"sendSingle": True}, [b'{"id":1,"t":20.5,"name":"a"}', b'{"id":2,"t":21.0,"name":"b,c"}']),
        (
            {"sendSingle": True, "fields": ["name", "id", "nope"]},
            [b'{"name":"a","id":1,"nope":null}', b'{"name":"b,c","id":2,"nope":null}'],
        ),
        ({"fields": "t"}, [b'[{"t":20.5},{"t":21.0}]']),
        ({"sendSingle": True, "dataTemplate": '{"v": {{.t}}}'}, [b'{"v": 20.5}', b'{"v": 21}']),
        ({"dataTemplate": "{{len .}} rows, first {{(index . 0).name}}"}, [b"2 rows, first a"]),
        ({"format": "delimited", "sendSingle": True, "fields": ["id", "name"]}, [b"1,a", b'2,"b,c"']),
        ({"format": "delimited", "delimiter": "|"}, [b"1|20.5|a\n2|21|b,c"]),
        ({"format": "binary", "fields": ["name"]}, [b"a", b"b,c"]),
    ],
)
def test_payloads_follow_the_properties(config: dict[str, Any], expected: list[bytes]):
    assert props(**config).payloads(BATCH) == expected


def test_properties_arriving_as_strings_from_sql_are_accepted():
    p = props(sendSingle="true", resendInterval="100", fields="id, name")
    assert (p.send_single, p.resend_interval_ms, p.fields) == (True, 100, ("id", "name"))


@pytest.mark.parametrize(
    "config, message",
    [
        ({"sendSingle": "yes"}, "test sink: property 'sendSingle' must be true or false, got 'yes'"),
        ({"format": "avro"}, "test sink: property 'format' must be one of 'json', 'delimited', 'binary', got 'avro'"),
        ({"dataTemplate": "{{if .a}}"}, "test sink: dataTemplate: a {{end}} is missing at the end of the template"),
        ({"resendInterval": -1}, "test sink: property 'resendInterval' must be a whole number >= 0, got -1"),
    ],
)
def test_wrong_properties_are_refused_with_what_to_write(config: dict[str, Any], message: str):
    with pytest.raises(ValueError) as err:
        SinkProps.split("test sink", config)
    assert str(err.value).startswith(message)


def test_binary_format_needs_one_bytes_column():
    with pytest.raises(ValueError) as err:
        props(format="binary").payloads(BATCH)
    assert str(err.value) == (
        'format "binary" sends one bytes column, but the result has: id int64, t double, '
        'name string; select a single bytea column (e.g. SELECT self FROM s) or set "fields"'
    )


def test_a_batch_sink_gets_the_properties_applied_in_front_of_it():
    broker = MemoryBroker()
    out = broker.subscribe("o")
    plugin = with_sink_props(MemorySinkPlugin(broker))
    assert plugin.name == "memory" and plugin.kind == "sink"
    sink = plugin.create({"topic": "o", "fields": ["name"], "sendSingle": True}, CTX)
    sink.write(BATCH)
    assert [out.get(0).to_pylist() for _ in range(2)] == [[{"name": "a"}], [{"name": "b,c"}]]
    sink = plugin.create({"topic": "o", "dataTemplate": "{{.id}}:{{.name}}", "sendSingle": True}, CTX)
    sink.write(BATCH)
    assert [out.get(0).to_pylist() for _ in range(2)] == [[{"payload": b"1:a"}], [{"payload": b"2:b,c"}]]
    with pytest.raises(ValueError) as err:  # a property neither the wrapper nor the plugin knows
        plugin.create({"topic": "o", "qos": 1}, CTX)
    assert str(err.value).startswith("memory sink: unknown property 'qos'")


def test_a_native_sink_gets_fields_and_send_single_applied_before_it(plugin_build: Path, tmp_path: Path):
    from plutino.native.loader import load_plugin

    native = load_plugin(plugin_build / "sinks" / "file.so", kind="sink")
    plugin = with_sink_props(native)
    assert plugin.path == native.path  # the registry's messages still name the real plugin
    out = tmp_path / "native.jsonl"
    sink = plugin.create({"path": str(out), "fields": ["name", "id"]}, CTX)
    sink.open()
    sink.write(BATCH)
    sink.close()
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        {"name": "a", "id": 1},
        {"name": "b,c", "id": 2},
    ]


class Flaky:
    """A sink that fails with an I/O error while ``down`` (a stand-in only for the cache's own
    logic; the rest sink test runs the same path against a real HTTP server)."""

    def __init__(self) -> None:
        self.down = True
        self.written: list[int] = []

    def open(self) -> None: ...

    def write(self, batch: pa.RecordBatch) -> None:
        if self.down:
            raise ConnectionError("down")
        self.written.extend(batch.column("id").to_pylist())

    def flush(self) -> None: ...

    def status(self) -> str:
        return "disconnected" if self.down else "connected"

    def close(self) -> None: ...


def test_resend_cache_keeps_order_and_drops_the_oldest_when_full():
    inner = Flaky()
    sink = ResendingSink(inner, interval_ms=10_000, capacity=2, what="flaky sink")
    for i in range(3):
        sink.write(pa.RecordBatch.from_pylist([{"id": i}]))
    assert sink.dropped == 1 and len(sink.cache) == 2
    inner.down = False
    sink.write(pa.RecordBatch.from_pylist([{"id": 3}]))  # the cache goes first
    assert inner.written == [1, 2, 3]
    sink.close()
