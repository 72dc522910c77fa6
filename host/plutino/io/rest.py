"""The ``rest`` sink: send a rule's results to an HTTP endpoint.

``{"rest": {"url": "http://127.0.0.1:8080/ingest", "method": "POST", "headers": {"X-Key": "k"}}}``;
by default one request per batch with a JSON array of its rows, one per row with ``sendSingle``
(and ``dataTemplate``, ``fields``, ``format`` as every sink, see :mod:`.sink_props`).

``method``     POST (default), PUT, PATCH, DELETE or GET
``headers``    extra request headers (an object)
``bodyType``   ``json`` (default, Content-Type application/json) or ``text`` (text/plain)
``timeout``    ms for connecting and for the answer, default 5000
``debugResp``  log each answer's status and body

The connection is kept open between requests (HTTP/1.1 keep-alive) and made again when the
server closes it. A 2xx answer is success. A connection failure, a timeout, 408, 429 and 5xx
raise an I/O error, which the engine retries (``retryCount``/``retryInterval``) or the resend
cache keeps (``resendInterval``); any other answer is a rejection: the batch is dropped and the
error, with the server's own message, shows in the rule status.
"""

from __future__ import annotations

import http.client
import logging
import socket
from typing import Any, Mapping
from urllib.parse import urlsplit

import pyarrow as pa

from plutino_contract.protocols import ConnectionStatus, Context

from .options import Options
from .sink_props import SinkProps, with_resend

VERSION = "1.0.0"
METHODS = ("post", "put", "patch", "delete", "get")
_RETRYABLE = {408, 429}
_log = logging.getLogger("plutino.io.rest")


class RestSink:
    def __init__(
        self,
        url: str,
        method: str,
        headers: dict[str, str],
        content_type: str,
        timeout: float,
        debug: bool,
        props: SinkProps,
    ) -> None:
        parts = urlsplit(url)
        self.url = url
        self.scheme = parts.scheme
        self.host = parts.hostname or ""
        self.port = parts.port
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.method = method
        self.headers = {"Content-Type": content_type, **headers}
        self.timeout = timeout
        self.debug = debug
        self.props = props
        self.sent = 0
        self._conn: http.client.HTTPConnection | None = None
        self._status: ConnectionStatus = "connecting"

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            self._conn = cls(self.host, self.port, timeout=self.timeout)
        return self._conn

    def open(self) -> None:
        self._status = "connected"  # connections are made per request, and kept

    def write(self, batch: pa.RecordBatch) -> None:
        for body in self.props.payloads(batch):
            self._send(body)

    def _send(self, body: bytes) -> None:
        for attempt in (1, 2):  # a kept-alive connection the server closed: reconnect once
            conn = self._connection()
            try:
                conn.request(self.method, self.target, body=body, headers=self.headers)
                resp = conn.getresponse()
                answer = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._drop()
                if attempt == 1:
                    continue
                self._status = "disconnected"
                raise ConnectionError(f"rest sink: {self.method} {self.url} failed: {exc}") from None
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                self._status = "disconnected"
                reason = "timed out" if isinstance(exc, socket.timeout) else str(exc) or type(exc).__name__
                raise ConnectionError(
                    f"rest sink: {self.method} {self.url} failed: {reason}; is the server up?"
                ) from None
            break
        self._status = "connected"
        if resp.will_close:
            self._drop()
        if self.debug:
            _log.info("rest sink: %s %s -> %s %s", self.method, self.url, resp.status, answer[:1000])
        if 200 <= resp.status < 300:
            self.sent += 1
            return
        text = answer[:300].decode("utf-8", "replace")
        message = f"rest sink: {self.method} {self.url} answered {resp.status} {resp.reason}: {text}"
        if resp.status >= 500 or resp.status in _RETRYABLE:
            raise ConnectionError(message)
        raise ValueError(message + "; the batch is dropped (check the url, method and body)")

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def flush(self) -> None:
        pass

    def status(self) -> ConnectionStatus:
        return self._status

    def close(self) -> None:
        self._drop()
        self._status = "disconnected"


class RestSinkPlugin:
    """Rule action ``{"rest": {"url": "http://host/path", "method": "POST"}}``."""

    name = "rest"
    version = VERSION
    kind = "sink"
    handles_sink_props = True
    builtin = True

    def create(self, config: Mapping[str, Any], context: Context) -> Any:
        what = "rest sink"
        props, rest = SinkProps.split(what, config)
        opts = Options(
            what,
            rest,
            {"url", "method", "headers", "bodyType", "timeout", "debugResp"},
            '{"rest": {"url": "http://127.0.0.1:8080/ingest", "method": "POST"}}',
        )
        url = opts.text("url", required=True)
        assert url is not None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise opts.error("url", "an http:// or https:// address with a host")
        try:
            _ = parts.port
        except ValueError:
            raise opts.error("url", "an address whose port is a number from 1 to 65535") from None
        headers = opts.mapping("headers")
        bad = next((k for k, v in headers.items() if not isinstance(v, (str, int, float))), None)
        if bad is not None:
            raise ValueError(f"rest sink: header {bad!r} must have a text value, got {headers[bad]!r}")
        body_type = opts.text("bodyType", "json", choices=("json", "text")) or "json"
        sink = RestSink(
            url,
            (opts.text("method", "post", choices=METHODS) or "post").upper(),
            {str(k): str(v) for k, v in headers.items()},
            "application/json" if body_type == "json" else "text/plain; charset=utf-8",
            opts.integer("timeout", 5000, minimum=1) / 1000,
            opts.flag("debugResp", False),
            props,
        )
        return with_resend(sink, props, f"rest sink {url}")


__all__ = ["RestSink", "RestSinkPlugin"]
