"""The built-in Python I/O plugins: memory source and sink, log sink."""

from __future__ import annotations

import logging

import pyarrow as pa
import pytest

from engine_helpers import Harness
from helpers import wait_for
from plutino.io import builtin_plugins
from plutino.io.log import LogSinkPlugin
from plutino.io.memory import MemoryBroker, MemorySinkPlugin, MemorySourcePlugin
from plutino_contract.protocols import Context, EndOfStream, SinkPlugin, SourcePlugin

BATCH = pa.RecordBatch.from_pylist([{"a": 1, "b": "x"}, {"a": 2, "b": None}])


def test_builtin_plugins_satisfy_the_contract_protocols():
    plugins = {(p.kind, p.name): p for p in builtin_plugins()}
    assert set(plugins) == {("source", "memory"), ("sink", "memory"), ("sink", "log")}
    assert isinstance(plugins[("source", "memory")], SourcePlugin)
    assert isinstance(plugins[("sink", "memory")], SinkPlugin)
    assert isinstance(plugins[("sink", "log")], SinkPlugin)


def test_memory_sink_publishes_to_the_memory_source_of_the_same_topic():
    broker = MemoryBroker()
    source = MemorySourcePlugin(broker).create({"datasource": "t", "format": "json"}, Context(plugin_name="memory"))
    sink = MemorySinkPlugin(broker).create({"topic": "t"}, Context(plugin_name="memory"))
    source.open()
    assert source.next(0) is None
    sink.write(BATCH)
    assert source.next(1).equals(BATCH)
    assert source.status() == "connected"
    broker.end("t")
    with pytest.raises(EndOfStream):
        source.next(1)
    source.close()
    assert broker.subscribers("t") == 0
    assert broker.publish("t", BATCH) == 0  # nobody reads: dropped


def test_memory_plugins_check_their_configuration():
    with pytest.raises(ValueError) as err:
        MemorySourcePlugin(MemoryBroker()).create({}, Context(plugin_name="memory"))
    assert str(err.value) == 'memory source: no topic; give the stream DATASOURCE="<topic>"'
    with pytest.raises(ValueError) as err:
        MemorySinkPlugin(MemoryBroker()).create({"topic": "t", "qos": 1}, Context(plugin_name="memory"))
    assert str(err.value) == (
        "memory sink: unknown property 'qos'; its properties are keyField, rowkindField, topic, "
        'e.g. {"memory": {"topic": "result"}}'
    )


def test_log_sink_writes_each_row_as_a_json_line(caplog):
    sink = LogSinkPlugin().create({}, Context(plugin_name="log", rule_id="r1"))
    with caplog.at_level(logging.INFO, logger="plutino.sink.log"):
        sink.write(BATCH)
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("plutino.sink.log.r1", '{"a": 1, "b": "x"}'),
        ("plutino.sink.log.r1", '{"a": 2, "b": null}'),
    ]
    with pytest.raises(ValueError) as err:
        LogSinkPlugin().create({"level": "loud"}, Context(plugin_name="log"))
    assert str(err.value) == "log sink: level 'loud' is not one of debug, info, warn, error"


def test_rules_chain_through_memory_topics(h: Harness):
    h.stream("demo", "v BIGINT")
    first = h.rule("first", "SELECT v * 2 AS v FROM demo", actions=[{"memory": {"topic": "in_doubled"}}])
    h.manager.create_stream('CREATE STREAM doubled (v BIGINT) WITH (TYPE="memory", DATASOURCE="in_doubled")')
    second = h.rule("second", "SELECT v + 1 AS v FROM doubled")
    first.feed([{"v": 1}, {"v": 2}])
    first.settle()
    wait_for(lambda: second.runtime.sink_metrics[0].records_out == 2, "the second rule")
    assert second.rows() == [{"v": 3}, {"v": 5}]


def test_json_payloads_of_a_bytes_source_are_decoded_by_the_stream_format(h: Harness, registry):
    from plutino.io.formats import DecodeError, decode

    payloads = pa.array([b'{"a": 1, "b": "x"}', b'{"a": 2}', b'{\n  "a": 3\n}'])
    assert decode(payloads, "json", None).to_pylist() == [{"a": 1, "b": "x"}, {"a": 2, "b": None}, {"a": 3, "b": None}]
    schema = pa.schema([("a", pa.float64()), ("c", pa.string())])
    assert decode(payloads, "json", schema).to_pylist() == [{"a": 1.0, "c": None}] + [
        {"a": 2.0, "c": None},
        {"a": 3.0, "c": None},
    ]
    with pytest.raises(DecodeError) as err:
        decode(pa.array([b'{"a": 1', b"x"]), "json", None)
    assert str(err.value).startswith('FORMAT="json" cannot decode message 0 (7 bytes: \'{"a": 1\')')

    class BytesSource:
        """A bytes source in Python: one binary column named payload."""

        name, version, kind = "bytes", "1.0.0", "source"

        def create(self, config, context):
            broker_sub = h.broker.subscribe(config["datasource"])

            class Instance:
                def schema(self):
                    return pa.schema([("payload", pa.binary())])

                def open(self): ...

                def next(self, timeout):
                    return broker_sub.get(timeout)

                def status(self):
                    return "connected"

                def close(self):
                    broker_sub.close()

            return Instance()

    registry.register(BytesSource())
    h.manager.create_stream('CREATE STREAM raw (a BIGINT) WITH (TYPE="bytes", DATASOURCE="in_raw", FORMAT="json")')
    r = h.rule("r1", "SELECT a FROM raw WHERE a > 1")
    r.feed(pa.RecordBatch.from_pydict({"payload": pa.array([b'{"a": 1}', b'{"a": 5, "z": 0}'])}))
    assert r.rows() == [{"a": 5}]
