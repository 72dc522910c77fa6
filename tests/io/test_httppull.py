"""The httppull source against a real HTTP server on a loopback port, through a RuleManager
(interval polling, eKuiper's PullTime/LastPullTime, incremental, headers, errors then
recovery) and directly (oAuth, responseType body, clear errors)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from helpers import free_port, wait_for
from plutino.engine import RuleManager
from plutino.engine.plugin_config import YamlConfigResolver
from plutino.io.httppull import HttpPullSourcePlugin
from plutino.io.httppull_request import PullError
from plutino.io.memory import MemoryBroker
from plutino_contract.protocols import Context

CTX = Context(plugin_name="httppull")
Answer = Callable[[dict[str, Any]], tuple[int, bytes]]


class Server:
    """A loopback HTTP server: records every request, answers with ``answer(request)``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                req = {
                    "method": self.command,
                    "path": urlsplit(self.path).path,
                    "query": {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()},
                    "headers": dict(self.headers),
                    "body": self.rfile.read(length) if length else b"",
                    "at": time.monotonic(),
                }
                server.requests.append(req)
                code, body = server.answer(req)
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Answer], Server]]:
    made: list[Server] = []

    def start(answer: Answer) -> Server:
        made.append(Server(answer))
        return made[-1]

    yield start
    for s in made:
        s.close()


@pytest.fixture
def manager(registry: Any, tmp_path: Path) -> Iterator[Callable[[str], RuleManager]]:
    made: list[RuleManager] = []

    def start(yaml_text: str) -> RuleManager:
        etc = tmp_path / "sources"
        etc.mkdir(exist_ok=True)
        (etc / "httppull.yaml").write_text(yaml_text)
        made.append(RuleManager(registry, config_for=YamlConfigResolver({"source": [etc], "sink": []})))
        return made[-1]

    yield start
    for m in made:
        m.shutdown()


def rows(sub: Any, n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(out) < n and time.monotonic() < deadline:
        batch = sub.get(0.05)
        if batch is not None:
            out.extend(batch.to_pylist())
    assert len(out) >= n, f"only {out} arrived"
    return out


def test_a_rule_polls_at_the_interval_with_headers_and_the_pull_times(serve, manager, memory_broker: MemoryBroker):
    count = iter(range(1, 1000))
    server = serve(lambda req: (200, json.dumps({"n": next(count), "t": 20.5}).encode()))
    m = manager(
        "default:\n  url: http://127.0.0.1:1/unused\n"
        "weather:\n"
        f"  url: '{server.base}/pull?start={{{{.LastPullTime}}}}&end={{{{.PullTime}}}}'\n"
        "  method: GET\n  Interval: 200\n"  # eKuiper's names match case-insensitively
        "  headers: {Authorization: 'Bearer abc', Accept: application/json}\n"
    )
    out = memory_broker.subscribe("pulled")
    m.create_stream('CREATE STREAM w (n BIGINT, t FLOAT) WITH (TYPE="httppull", CONF_KEY="weather")')
    m.create_rule({"id": "pull", "sql": "SELECT n, t FROM w", "actions": [{"memory": {"topic": "pulled"}}]})
    assert [r["n"] for r in rows(out, 4)][:4] == [1, 2, 3, 4]
    reqs = server.requests[:4]
    assert all(r["method"] == "GET" and r["path"] == "/pull" for r in reqs)
    assert all(r["headers"]["Authorization"] == "Bearer abc" for r in reqs)
    gaps = [b["at"] - a["at"] for a, b in zip(reqs, reqs[1:])]
    assert all(0.15 < g < 0.6 for g in gaps), gaps
    times = [(int(r["query"]["start"]), int(r["query"]["end"])) for r in reqs]
    assert times[0][1] - times[0][0] == 200  # the first pull: PullTime - interval
    for (_, end), (start, _) in zip(times, times[1:]):
        assert start == end  # each pull asks from where the last one ended
    assert m.rule_status("pull")["source_w_0_connection_status"] == 1


def test_incremental_skips_an_answer_equal_to_the_last(serve, manager, memory_broker: MemoryBroker):
    bodies = iter([b'{"v": 1}', b'{"v": 1}', b'{"v": 1}', b'{"v": 2}'])
    server = serve(lambda req: (200, next(bodies, b'{"v": 2}')))
    m = manager(f"default:\n  url: {server.base}/state\n  interval: 50\n  incremental: true\n")
    out = memory_broker.subscribe("inc")
    m.create_stream('CREATE STREAM st (v BIGINT) WITH (TYPE="httppull")')
    m.create_rule({"id": "inc", "sql": "SELECT v FROM st", "actions": [{"memory": {"topic": "inc"}}]})
    assert rows(out, 2) == [{"v": 1}, {"v": 2}]
    wait_for(lambda: len(server.requests) >= 7, "more pulls")
    assert out.get(0.2) is None  # the same answer again: nothing new
    assert m.rule_status("inc")["source_st_0_records_in_total"] == 2


def test_errors_are_counted_with_clear_messages_and_polling_recovers(serve, manager, memory_broker: MemoryBroker):
    answers = iter([(500, b"database down"), (200, b'{"id": '), (200, b'{"id": 7}')])
    server = serve(lambda req: next(answers, (200, b'{"id": 8}')))
    m = manager(f"default:\n  url: {server.base}/items\n  method: post\n"
                "  body: '{\"since\": {{.LastPullTime}}}'\n  interval: 100\n")
    out = memory_broker.subscribe("items")
    m.create_stream('CREATE STREAM items (id BIGINT) WITH (TYPE="httppull", DATASOURCE="?page=1")')
    m.create_rule({"id": "items", "sql": "SELECT id FROM items", "actions": [{"memory": {"topic": "items"}}]})
    assert rows(out, 1)[0] == {"id": 7}
    status = m.rule_status("items")
    assert status["source_items_0_exceptions_total"] == 2  # the 500 and the body that is not JSON
    first = server.requests[0]
    assert first["method"] == "POST" and first["query"] == {"page": "1"}  # DATASOURCE is appended to url
    assert first["headers"]["Content-Type"] == "application/json"
    assert json.loads(first["body"])["since"] > 0
    assert status["source_items_0_connection_status"] == 1


def test_a_refused_connection_says_so_and_the_rule_keeps_polling(manager):
    port = free_port()
    m = manager(f"default:\n  url: http://127.0.0.1:{port}/x\n  interval: 50\n")
    m.create_stream('CREATE STREAM gone (id BIGINT) WITH (TYPE="httppull")')
    m.create_rule({"id": "gone", "sql": "SELECT id FROM gone", "actions": [{"nop": {}}]})
    status = wait_for(lambda: (s := m.rule_status("gone"))["source_gone_0_exceptions_total"] >= 3 and s,
                      "3 failed pulls")
    assert status["source_gone_0_last_exception"] == (
        f"httppull source: GET http://127.0.0.1:{port}/x failed: connection refused; "
        "check that the server runs and the url's host and port"
    )
    assert status["source_gone_0_connection_status"] == -1
    assert m.rule_status("gone")["status"] == "running"


def pull_once(config: dict[str, Any]) -> Any:
    """A source read without the scheduler (a thread calling next): one pull."""
    src = HttpPullSourcePlugin().create(config, CTX)
    src.open()
    try:
        return src.next(1.0)
    finally:
        src.close()


def test_oauth_gets_a_token_and_refreshes_it_when_it_expires(serve):
    tokens = iter(["t1", "t2"])

    def answer(req: dict[str, Any]) -> tuple[int, bytes]:
        if req["path"] == "/token":
            return 200, json.dumps({"token": next(tokens), "refresh": "r1", "expires_in": 0}).encode()
        if req["path"] == "/refresh":
            assert req["headers"]["X-Refresh"] == "r1"
            return 200, json.dumps({"token": "t3"}).encode()
        return 200, json.dumps({"auth": req["headers"].get("Authorization")}).encode()

    server = serve(answer)
    src = HttpPullSourcePlugin().create(
        {
            "url": f"{server.base}/data",
            "interval": 1,
            "headers": {"Authorization": "Bearer {{.token}}"},
            "oauth": {
                "access": {"url": f"{server.base}/token", "body": '{"code": "c"}', "expire": "{{.expires_in}}"},
                "refresh": {"url": f"{server.base}/refresh", "headers": {"X-Refresh": "{{.refresh}}"}},
            },
        },
        CTX,
    )
    src.open()
    try:
        first = src.next(1.0)
        second = wait_for(lambda: src.next(0.1), "the second pull")
    finally:
        src.close()
    assert json.loads(first.column(0)[0].as_py()) == {"auth": "Bearer t1"}
    assert json.loads(second.column(0)[0].as_py()) == {"auth": "Bearer t3"}  # refreshed: expire 0
    assert [r["path"] for r in server.requests] == ["/token", "/data", "/refresh", "/data"]
    assert json.loads(server.requests[0]["body"]) == {"code": "c"}


def test_response_type_body_checks_the_code_field(serve):
    server = serve(lambda req: (200, b'{"code": 500, "message": "no data"}' if req["path"] == "/bad"
                                else b'{"code": 200, "v": 1}'))
    ok = pull_once({"url": f"{server.base}/ok", "responseType": "body"})
    assert json.loads(ok.column(0)[0].as_py()) == {"code": 200, "v": 1}
    with pytest.raises(PullError, match=r"httppull source: the answer of .*/bad has code 500"):
        pull_once({"url": f"{server.base}/bad", "responseType": "body"})


def test_bad_properties_are_refused_with_what_to_write():
    with pytest.raises(ValueError, match="httppull source: property 'url' is missing"):
        HttpPullSourcePlugin().create({}, CTX)
    with pytest.raises(ValueError, match="property 'url' must be an http:// or https:// address"):
        HttpPullSourcePlugin().create({"url": "ftp://x/y"}, CTX)
    with pytest.raises(ValueError, match="unknown property 'intervall'; did you mean 'interval'"):
        HttpPullSourcePlugin().create({"url": "http://x/", "intervall": 5}, CTX)
    with pytest.raises(ValueError, match="property 'responseType' must be one of 'code', 'body'"):
        HttpPullSourcePlugin().create({"url": "http://x/", "responseType": "json"}, CTX)
