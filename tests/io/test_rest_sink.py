"""The rest sink against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pyarrow as pa
import pytest

from helpers import free_port, wait_for
from plutino.engine import RuleManager
from plutino.io.memory import MemoryBroker
from plutino.io.rest import RestSinkPlugin
from plutino_contract.protocols import Context

CTX = Context(plugin_name="rest")
BATCH = pa.RecordBatch.from_pylist([{"id": 1, "t": 20.5}, {"id": 2, "t": 21.0}])


class Receiver:
    """An HTTP server that records every request and answers with the next queued status (200
    when none is queued)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    if status < 300:
                        receiver.requests.append(
                            {"method": self.command, "path": self.path, "body": body, "headers": dict(self.headers)}
                        )
                answer = b"ok" if status < 300 else f"status {status} for you".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_POST = do_PUT = do_GET = do_DELETE = do_PATCH = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def bodies(self) -> list[Any]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def sink(config: dict[str, Any]) -> Any:
    s = RestSinkPlugin().create(config, CTX)
    s.open()
    return s


def test_one_request_per_batch_with_headers_or_one_per_row(receiver: Receiver):
    s = sink({"url": f"{receiver.url}/ingest?src=plutino", "headers": {"X-Key": "k1"}})
    s.write(BATCH)
    s.write(BATCH)  # the kept-alive connection is reused
    s.close()
    single = sink({"url": f"{receiver.url}/row", "method": "put", "sendSingle": True, "fields": ["id"]})
    single.write(BATCH)
    single.close()
    first = receiver.requests[0]
    assert (first["method"], first["path"]) == ("POST", "/ingest?src=plutino")
    assert first["headers"]["X-Key"] == "k1" and first["headers"]["Content-Type"] == "application/json"
    assert receiver.bodies() == [BATCH.to_pylist(), BATCH.to_pylist(), {"id": 1}, {"id": 2}]
    assert [r["method"] for r in receiver.requests[2:]] == ["PUT", "PUT"]


def test_server_errors_are_io_errors_and_rejections_are_not(receiver: Receiver):
    s = sink({"url": receiver.url + "/x"})
    receiver.statuses[:] = [503, 400]
    with pytest.raises(OSError) as err:
        s.write(BATCH)
    assert str(err.value) == f"rest sink: POST {receiver.url}/x answered 503 Service Unavailable: status 503 for you"
    with pytest.raises(ValueError) as rejected:
        s.write(BATCH)
    assert str(rejected.value) == (
        f"rest sink: POST {receiver.url}/x answered 400 Bad Request: status 400 for you; "
        "the batch is dropped (check the url, method and body)"
    )
    s.close()


def test_an_unreachable_server_is_an_io_error():
    url = f"http://127.0.0.1:{free_port()}/x"
    s = sink({"url": url, "timeout": 500})
    with pytest.raises(ConnectionError) as err:
        s.write(BATCH)
    assert str(err.value).startswith(f"rest sink: POST {url} failed: ")
    assert s.status() == "disconnected"


def test_resend_interval_caches_failed_batches_and_delivers_them_in_order(receiver: Receiver):
    s = sink({"url": receiver.url, "resendInterval": 20, "sendSingle": True, "fields": ["id"]})
    receiver.statuses[:] = [503, 503]
    s.write(pa.RecordBatch.from_pylist([{"id": 1}]))  # fails: cached, no error
    s.write(pa.RecordBatch.from_pylist([{"id": 2}]))  # queued behind it
    wait_for(lambda: s.resent == 2, "the cache to be resent")
    assert receiver.bodies() == [{"id": 1}, {"id": 2}]
    assert len(s.cache) == 0
    s.close()


def test_the_engine_retries_a_batch_the_server_failed(receiver: Receiver, registry: Any, memory_broker: MemoryBroker):
    manager = RuleManager(registry)
    receiver.statuses[:] = [500]
    try:
        manager.create_stream('CREATE STREAM s () WITH (TYPE="memory", DATASOURCE="rest_in")')
        manager.create_rule(
            {
                "id": "to_rest",
                "sql": "SELECT id FROM s",
                "actions": [{"rest": {"url": receiver.url, "retryCount": 2, "retryInterval": 10}}],
            }
        )
        memory_broker.publish("rest_in", BATCH)
        wait_for(lambda: receiver.requests, "the retried request")
        assert receiver.bodies() == [[{"id": 1}, {"id": 2}]]
        status = manager.rule_status("to_rest")
        assert status["sink_rest_0_0_retries_total"] == 1
        assert status["sink_rest_0_0_connection_status"] == 1
    finally:
        manager.shutdown()


@pytest.mark.parametrize(
    "config, message",
    [
        ({}, "rest sink: property 'url' is missing; e.g. "),
        (
            {"url": "ftp://x"},
            "rest sink: property 'url' must be an http:// or https:// address with a host, got 'ftp://x'",
        ),
        (
            {"url": "http://x", "method": "TRACE"},
            "rest sink: property 'method' must be one of 'post', 'put', 'patch', 'delete', 'get', got 'TRACE'",
        ),
        ({"url": "http://x", "headers": {"a": [1]}}, "rest sink: header 'a' must have a text value, got [1]"),
    ],
)
def test_configuration_mistakes_are_named(config: dict[str, Any], message: str):
    with pytest.raises(ValueError) as err:
        RestSinkPlugin().create(config, CTX)
    assert str(err.value).startswith(message)
