"""The httppush source: real HTTP requests to its endpoint on a loopback port."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from helpers import free_port, wait_for
from plutino.engine import RuleManager
from plutino.engine.plugin_config import YamlConfigResolver
from plutino.io.formats import decode, payload_column
from plutino.io.httppush import HttpPushSourcePlugin
from plutino.io.memory import MemoryBroker
from plutino_contract.protocols import Context

CTX = Context(plugin_name="httppush")


def post(url: str, body: bytes, method: str = "POST") -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture
def port() -> int:
    return free_port()


def source(port: int, **config: Any) -> Any:
    s = HttpPushSourcePlugin().create({"httpServerPort": port, "format": "json", **config}, CTX)
    s.open()
    return s


def test_posted_objects_and_arrays_become_rows(port: int):
    s = source(port, datasource="/api/data")
    try:
        assert s.status() == "connected"
        assert post(s.url, b'{"id": 1, "t": 20.5}') == (200, {"status": "ok"})
        assert post(s.url, b'[{"id": 2, "t": 21}, {"id": 3}]')[0] == 200
        batch = s.next(1.0)
        assert decode(payload_column(batch), "json").to_pylist() == [
            {"id": 1, "t": 20.5},
            {"id": 2, "t": 21.0},
            {"id": 3, "t": None},
        ]
        assert s.next(0.01) is None
    finally:
        s.close()
    assert s.status() == "disconnected"


def test_bad_requests_get_answers_that_say_what_is_wrong(port: int):
    s = source(port, datasource="/in", bufferLength=1)
    base = f"http://127.0.0.1:{port}"
    try:
        status, body = post(s.url, b'{"id": ')
        assert status == 400
        assert body["message"].startswith('the body is not JSON (the stream has FORMAT="json"): ')
        assert post(f"{base}/other", b"{}") == (
            404,
            {"error": 404, "message": "no stream reads /other; endpoints here: /in"},
        )
        assert post(s.url, b"{}", method="PUT") == (405, {"error": 405, "message": "/in takes POST, not PUT"})
        assert post(s.url, b"  ") == (400, {"error": 400, "message": "the body is empty; send the message as the body"})
        assert post(s.url, b'{"a": 1}')[0] == 200
        assert post(s.url, b'{"a": 2}') == (503, {"error": 503, "message": "the stream's queue is full; retry later"})
        assert s.next(1.0).num_rows == 1
        assert post(s.url, b'{"a": 2}')[0] == 200  # room again
    finally:
        s.close()


def test_streams_on_one_port_share_the_server_and_the_last_close_frees_the_port(port: int):
    a = source(port, datasource="/a")
    b = source(port, datasource="b", method="PUT")
    assert b.url == f"http://127.0.0.1:{port}/b"
    assert post(a.url, b'{"x": 1}')[0] == 200
    assert post(b.url, b'{"y": 1}', method="PUT")[0] == 200
    assert payload_column(a.next(1.0)).to_pylist() == [b'{"x": 1}']
    assert payload_column(b.next(1.0)).to_pylist() == [b'{"y": 1}']
    a.close()
    assert post(b.url, b'{"y": 2}', method="PUT")[0] == 200
    b.close()
    with pytest.raises(urllib.error.URLError):
        post(b.url, b"{}", method="PUT")


def test_a_rule_reads_what_clients_push(port: int, registry: Any, memory_broker: MemoryBroker, tmp_path: Path):
    etc = tmp_path / "sources"
    etc.mkdir()
    (etc / "httppush.yaml").write_text(f"default:\n  httpServerPort: {port}\n")
    manager = RuleManager(registry, config_for=YamlConfigResolver({"source": [etc], "sink": []}))
    out = memory_broker.subscribe("pushed")
    try:
        manager.create_stream('CREATE STREAM pushed (id BIGINT, t FLOAT) WITH (TYPE="httppush", DATASOURCE="/ingest")')
        manager.create_rule(
            {"id": "push", "sql": "SELECT id FROM pushed WHERE t > 20", "actions": [{"memory": {"topic": "pushed"}}]}
        )
        wait_for(
            lambda: manager.rule_status("push").get("source_pushed_0_connection_status") == 1,
            "the endpoint to listen",
        )
        for body in (b'{"id": 1, "t": 19}', b'{"id": 2, "t": 25}'):
            assert post(f"http://127.0.0.1:{port}/ingest", body)[0] == 200
        assert wait_for(lambda: out.get(0.05), "the rule's result").to_pylist() == [{"id": 2}]
    finally:
        manager.shutdown()
