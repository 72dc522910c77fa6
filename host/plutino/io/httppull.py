"""The ``httppull`` source: a URL polled at an interval (eKuiper's HTTP pull source).

``CREATE STREAM s () WITH (TYPE="httppull", CONF_KEY="weather", FORMAT="json")`` with, in
``etc/sources/httppull.yaml`` (or the stream's properties; names match case-insensitively)::

    default:
      url: http://127.0.0.1:9090/pull   # DATASOURCE, when given, is appended to it
      method: get                       # get, post, put, delete (default: get)
      interval: 10000                   # ms between the starts of two pulls
      timeout: 5000                     # ms for one request
      incremental: false                # true: an answer equal to the last one is skipped
      body: '{"since": {{.LastPullTime}}}'
      bodyType: json                    # none, text, json, html, xml, javascript, form
      headers: {Accept: application/json, Authorization: 'Bearer {{.token}}'}
      responseType: code                # code: HTTP status; body: the JSON answer's "code"
      insecureSkipVerify: false
      oAuth: {access: {url: ..., body: ..., expire: '3600'}, refresh: {url: ..., headers: ...}}

Each answer's body is one message, decoded by the stream's FORMAT (a JSON object or an array
of objects: a row each). ``url``, ``body`` and header values are Go templates with eKuiper's
``{{.PullTime}}`` and ``{{.LastPullTime}}`` (int64 ms since the epoch) and the oAuth token
answer's fields. ``LastPullTime`` is the ``PullTime`` of the last pull that succeeded (the
first pull: ``PullTime - interval``), so a failed pull's time range is asked for again.

Costs: no thread per stream. The process's one alarm thread (:mod:`.alarms`) says when a
pull is due; the request runs on a small pool shared by every httppull stream (``POOL_SIZE``
threads, each bounded by ``timeout``), and its answer wakes the rule's reader on the engine's
scheduler (``set_ready``). A rule that does not take what was pulled pauses the polling.
A failure (refused connection, timeout, non-2xx, a ``code`` that is not 2xx) is counted in the
rule's source metrics with a message saying what to check; polling goes on at the interval.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import pyarrow as pa

from plutino_contract.protocols import ConnectionStatus, Context

from .alarms import call_at
from .formats import PAYLOAD_SCHEMA, payload_batch
from .httppull_request import BODY_TYPES, OAuth, PullError, Text, call, check_body_code, encode_body, ssl_context
from .options import RESERVED_SOURCE_KEYS, Options

VERSION = "1.0.0"
POOL_SIZE = 4
METHODS = ("get", "post", "put", "delete")
EXAMPLE = '{"url": "http://127.0.0.1:9090/pull", "method": "get", "interval": 10000}'

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _submit(fn: Callable[[], None]) -> None:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="plutino-httppull")
        _pool.submit(fn)


class Settings:
    """A stream's validated properties (templates parsed once)."""

    def __init__(self, opts: Options) -> None:
        url = opts.text("url", required=True) or ""
        datasource = opts.text("datasource", "") or ""
        if datasource and datasource != "/":
            url = url + datasource
        self.url = Text("url", url)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise opts.error("url", "an http:// or https:// address with a host")
        self.method = (opts.text("method", "get", choices=METHODS) or "get").upper()
        self.interval = opts.integer("interval", 10_000, minimum=1) / 1000
        self.timeout = opts.integer("timeout", 5000, minimum=1) / 1000
        self.incremental = opts.flag("incremental", False)
        self.body_type = opts.text("bodyType", "json", choices=tuple(BODY_TYPES)) or "json"
        self.body = Text("body", opts.text("body", "") or "")
        headers = opts.mapping("headers")
        bad = next((k for k, v in headers.items() if not isinstance(v, (str, int, float))), None)
        if bad is not None:
            raise ValueError(f"httppull source: header {bad!r} must have a text value, got {headers[bad]!r}")
        self.headers = {str(k): Text(f"header {k}", str(v)) for k, v in headers.items()}
        self.response_type = opts.text("responseType", "code", choices=("code", "body")) or "code"
        self.context = ssl_context(opts.flag("insecureSkipVerify", False)) if parts.scheme == "https" else None
        oauth = opts.mapping("oAuth")
        self.oauth = OAuth(oauth, self.timeout, self.context) if oauth else None

    def pull(self, pull_time: int, last_pull_time: int) -> bytes:
        """One request; the answer's body."""
        values: dict[str, Any] = dict(self.oauth.tokens()) if self.oauth is not None else {}
        values.update(PullTime=pull_time, LastPullTime=last_pull_time)
        url = self.url.render(values)
        headers = {k: t.render(values) for k, t in self.headers.items()}
        body = encode_body(self.body.render(values), self.body_type) if self.method != "GET" else None
        content_type = BODY_TYPES[self.body_type]
        if body is not None and content_type and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = content_type
        try:
            data = call(self.method, url, headers, body, self.timeout, self.context)
        except PullError as exc:
            if exc.status in (401, 403) and self.oauth is not None:
                self.oauth.forget()  # the token was refused: a new one for the next pull
            raise
        if self.response_type == "body":
            check_body_code(data, url)
        return data


class HttpPullSource:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._outcome: bytes | PullError | None = None  # what the last pull brought, not yet read
        self._last_body: bytes | None = None  # for incremental: the last answer handed on
        self._last_pull_ms: int | None = None
        self._due = 0.0
        self._started = 0.0
        self._pulling = False
        self._stop = threading.Event()
        self._status: ConnectionStatus = "connecting"
        self._ready: Callable[[], None] | None = None

    def schema(self) -> pa.Schema:
        return PAYLOAD_SCHEMA

    def open(self) -> None:
        self._stop.clear()
        self._due = time.monotonic()  # the first pull at once, then every interval

    def set_ready(self, callback: Callable[[], None]) -> None:
        """Read on the engine's scheduler: the alarm thread starts each pull when it is due, the
        shared pool runs it, and ``callback()`` says that its outcome is there for next(0)."""
        self._ready = callback
        call_at(self._due, self._fire)

    def _fire(self) -> None:
        with self._lock:
            if self._stop.is_set() or self._pulling or self._outcome is not None:
                return
            self._pulling = True
        _submit(self._pull_async)

    def _pull_async(self) -> None:
        try:
            outcome = self._pull()
        finally:
            with self._lock:
                self._pulling = False
        with self._lock:
            if self._stop.is_set():
                return
            self._outcome = outcome
            ready = self._ready
        if ready is not None:
            ready()
        if outcome is None:
            self._schedule()  # nothing new (incremental): nothing to read, so the next pull now

    def _pull(self) -> bytes | PullError | None:
        """One pull: the new answer, the error, or None for an answer equal to the last."""
        self._started = time.monotonic()
        now_ms = int(time.time() * 1000)
        last = self._last_pull_ms if self._last_pull_ms is not None else now_ms - int(self.settings.interval * 1000)
        try:
            data = self.settings.pull(now_ms, last)
        except PullError as exc:
            self._status = "connected" if exc.status is not None else "disconnected"
            return exc
        except Exception as exc:  # a bug guard: counted like a failed pull, never lost
            self._status = "disconnected"
            return PullError(f"httppull source: the pull failed: {exc}")
        self._status = "connected"
        self._last_pull_ms = now_ms
        if self.settings.incremental and data == self._last_body:
            return None
        self._last_body = data
        return data

    def _schedule(self) -> None:
        self._due = max(self._started + self.settings.interval, time.monotonic())
        if self._ready is not None and not self._stop.is_set():
            call_at(self._due, self._fire)

    def next(self, timeout: float) -> pa.RecordBatch | None:
        if self._ready is None:  # read by a thread of its own (not driven): pull when due
            wait = self._due - time.monotonic()
            if wait > 0 and (self._stop.wait(min(wait, timeout)) or wait > timeout):
                return None
            outcome = self._pull()
            self._due = max(self._started + self.settings.interval, time.monotonic())
        else:
            with self._lock:
                outcome, self._outcome = self._outcome, None
            if outcome is None:
                return None
            self._schedule()
        if isinstance(outcome, PullError):
            raise outcome
        return payload_batch([outcome]) if outcome is not None else None

    def status(self) -> ConnectionStatus:
        return self._status

    def close(self) -> None:
        self._ready = None
        self._stop.set()
        self._status = "disconnected"


class HttpPullSourcePlugin:
    """``CREATE STREAM s () WITH (TYPE="httppull", CONF_KEY="...")`` with ``url`` in httppull.yaml."""

    name = "httppull"
    version = VERSION
    kind = "source"
    builtin = True

    def create(self, config: Mapping[str, Any], context: Context) -> HttpPullSource:
        opts = Options(
            "httppull source",
            config,
            {
                "url",
                "method",
                "interval",
                "timeout",
                "incremental",
                "body",
                "bodyType",
                "headers",
                "responseType",
                "insecureSkipVerify",
                "oAuth",
                "datasource",
                "certificationPath",
                "privateKeyPath",
                "rootCaPath",
            },
            EXAMPLE,
            ignore=RESERVED_SOURCE_KEYS,
        )
        for key in ("certificationPath", "privateKeyPath", "rootCaPath"):
            if opts.has(key):
                raise ValueError(
                    f"httppull source: '{key}' (client certificates) is not supported yet; "
                    "use headers or oAuth for authentication, insecureSkipVerify for a self-signed server"
                )
        return HttpPullSource(Settings(opts))


__all__ = ["HttpPullSource", "HttpPullSourcePlugin"]
