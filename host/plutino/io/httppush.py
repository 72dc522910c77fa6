"""The ``httppush`` source: clients POST messages to an endpoint of the host.

``CREATE STREAM s () WITH (TYPE="httppush", DATASOURCE="/api/data", FORMAT="json")``; a client
then sends ``curl -X POST http://127.0.0.1:10081/api/data -d '{"a": 1}'``. Each request body is
one message (a JSON object, or a JSON array of objects: one row each), decoded by the stream's
FORMAT like an MQTT message. Properties (from ``httppush.yaml`` or the stream):

``httpServerIp``    address to listen on; default ``127.0.0.1`` (eKuiper listens on every
                    address; set ``0.0.0.0`` to do that, knowing anyone who can reach the port
                    can then feed the stream)
``httpServerPort``  default 10081 (eKuiper's)
``method``          ``POST`` (default) or ``PUT``

Streams on the same address and port share one small threaded HTTP server; each stream has
its own path (DATASOURCE), and every source instance reading a path gets every message.
Answers: 200 ``{"status":"ok"}`` once the message is queued; 400 when a FORMAT=json body is not
JSON (with the parser's message); 404 for an unknown path; 405 for another method; 503 when
the stream's queue (``bufferLength`` messages, default 102400) is full: the client should
retry, which is how a slow rule pushes back on its senders.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Mapping

import orjson
import pyarrow as pa

from plutino_contract.protocols import ConnectionStatus, Context

from .formats import PAYLOAD_SCHEMA, payload_batch
from .options import RESERVED_SOURCE_KEYS, Options

VERSION = "1.0.0"
MAX_BATCH = 10_000
MAX_BODY = 16 * 1024 * 1024
_log = logging.getLogger("plutino.io.httppush")


class _Endpoint:
    """The readers of one path."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.readers: list["HttpPushSource"] = []


class _Server:
    """One listening socket shared by every httppush stream on it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.endpoints: dict[str, _Endpoint] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                server.handle(self, "POST")

            def do_PUT(self) -> None:
                server.handle(self, "PUT")

            def do_GET(self) -> None:
                server.handle(self, "GET")

            def log_message(self, format: str, *args: Any) -> None:
                _log.debug("%s " + format, self.address_string(), *args)

        try:
            self.httpd = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise OSError(
                f"httppush source: cannot listen on {host}:{port}: {exc.strerror or exc}; "
                "choose another httpServerPort or stop what uses it"
            ) from None
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), name=f"plutino-httppush-{self.port}", daemon=True
        )
        self.thread.start()

    def handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        path = req.path.split("?", 1)[0]
        with self.lock:
            endpoint = self.endpoints.get(path)
            readers = list(endpoint.readers) if endpoint else []
        length = int(req.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return _answer(req, 413, f"the body has {length} bytes; the limit is {MAX_BODY}")
        body = req.rfile.read(length) if length else b""
        if endpoint is None or not readers:
            known = ", ".join(sorted(self.endpoints)) or "none"
            return _answer(req, 404, f"no stream reads {path}; endpoints here: {known}")
        if method != endpoint.method:
            return _answer(req, 405, f"{path} takes {endpoint.method}, not {method}")
        if not body.strip():
            return _answer(req, 400, "the body is empty; send the message as the body")
        if any(r.format == "json" for r in readers):
            try:
                orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                return _answer(req, 400, f'the body is not JSON (the stream has FORMAT="json"): {exc}')
        if not all(r.offer(body) for r in readers):
            return _answer(req, 503, "the stream's queue is full; retry later")
        _answer(req, 200, None)

    def add(self, path: str, method: str, reader: "HttpPushSource") -> None:
        with self.lock:
            endpoint = self.endpoints.setdefault(path, _Endpoint(method))
            if endpoint.method != method:
                raise ValueError(
                    f"httppush source: {path} on port {self.port} already takes {endpoint.method}; "
                    f"a stream cannot add {method} to it"
                )
            endpoint.readers.append(reader)

    def remove(self, path: str, reader: "HttpPushSource") -> bool:
        """Drop a reader; True when the server has no readers left."""
        with self.lock:
            endpoint = self.endpoints.get(path)
            if endpoint and reader in endpoint.readers:
                endpoint.readers.remove(reader)
                if not endpoint.readers:
                    del self.endpoints[path]
            return not self.endpoints

    def shutdown(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _answer(req: BaseHTTPRequestHandler, code: int, error: str | None) -> None:
    body = b'{"status":"ok"}' if error is None else json.dumps({"error": code, "message": error}).encode()
    req.send_response(code)
    req.send_header("Content-Type", "application/json")
    req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    req.wfile.write(body)


_servers: dict[tuple[str, int], _Server] = {}
_servers_lock = threading.Lock()


class HttpPushSource:
    def __init__(self, host: str, port: int, path: str, method: str, fmt: str, buffer: int) -> None:
        self.host = host
        self.port = port
        self.path = path
        self.method = method
        self.format = fmt
        self.capacity = buffer
        self._pending: collections.deque[bytes] = collections.deque()
        self._cond = threading.Condition()
        self._server: _Server | None = None
        self._status: ConnectionStatus = "connecting"
        self._ready: Any = None  # the engine's callback: next(0) has something (set_ready)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    def schema(self) -> pa.Schema:
        return PAYLOAD_SCHEMA

    def open(self) -> None:
        with _servers_lock:
            server = _servers.get((self.host, self.port))
            if server is None:
                server = _Server(self.host, self.port)
                _servers[(self.host, server.port)] = server
            server.add(self.path, self.method, self)
        self._server = server
        self.port = server.port
        self._status = "connected"

    def offer(self, body: bytes) -> bool:
        with self._cond:
            if len(self._pending) >= self.capacity:
                return False
            self._pending.append(body)
            self._cond.notify()
            ready = self._ready
        if ready is not None:
            ready()
        return True

    def set_ready(self, callback: Any) -> None:
        """Read on the engine's scheduler: ``callback()`` whenever a body was queued."""
        with self._cond:
            self._ready = callback
            pending = bool(self._pending)
        if pending:
            callback()

    def next(self, timeout: float) -> pa.RecordBatch | None:
        with self._cond:
            if not self._pending:
                self._cond.wait(timeout)
            if not self._pending:
                return None
            count = min(len(self._pending), MAX_BATCH)
            payloads = [self._pending.popleft() for _ in range(count)]
        return payload_batch(payloads)

    def status(self) -> ConnectionStatus:
        return self._status

    def close(self) -> None:
        server, self._server = self._server, None
        self._status = "disconnected"
        if server is None:
            return
        with _servers_lock:
            if server.remove(self.path, self):
                _servers.pop((self.host, server.port), None)
                server.shutdown()


class HttpPushSourcePlugin:
    """``CREATE STREAM s () WITH (TYPE="httppush", DATASOURCE="/api/data")``."""

    name = "httppush"
    version = VERSION
    kind = "source"
    builtin = True

    def create(self, config: Mapping[str, Any], context: Context) -> HttpPushSource:
        what = "httppush source"
        opts = Options(
            what,
            config,
            {"datasource", "httpServerIp", "httpServerPort", "method", "format", "bufferLength"},
            '{"httpServerPort": 10081, "method": "POST"}',
            ignore=RESERVED_SOURCE_KEYS,
        )
        path = opts.text("datasource", "/") or "/"
        if not path.startswith("/"):
            path = "/" + path
        method = (opts.text("method", "POST", choices=("post", "put")) or "post").upper()
        return HttpPushSource(
            host=opts.text("httpServerIp", "127.0.0.1") or "127.0.0.1",
            port=opts.integer("httpServerPort", 10081, minimum=0, maximum=65535),
            path=path,
            method=method,
            fmt=(opts.text("format", "json") or "json").lower(),
            buffer=opts.integer("bufferLength", 102_400, minimum=1),
        )


__all__ = ["HttpPushSource", "HttpPushSourcePlugin"]
