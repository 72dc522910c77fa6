"""Who may use the API, from where, and how much a request may send: the API's front door.

One pure-ASGI guard runs before routing, for every path, in this order:

1. **Host and Origin** (:mod:`plutino.api.origin`): a request for a host name that is not the
   server's (DNS rebinding), or sent by a web page of another site, is refused with 403.
2. **A bearer token** (optional). When set, every request needs ``Authorization: Bearer
   <token>`` (401 otherwise), GETs too, as Jupyter Server and Home Assistant ask: the answers
   name rules, brokers and files. ``api.public_reads: true`` lets GET and HEAD through without
   it, answering ``$PLUTINO_HOME`` wherever the data directory's path would be shown; exports
   (``/data/export``, ``/ruleset/export``) hold secrets unmasked and need the token always.
   ``/ping`` and the API's own documentation (``/docs``, ``/openapi.json``) stay open.
3. **JSON only.** A POST, PUT, PATCH or DELETE with a body must say ``Content-Type:
   application/json`` (415 otherwise). A browser cannot send that to another site without
   asking first (a CORS preflight), so a page cannot slip a request past the Origin check.
4. **A body-size limit.** A request body over ``max_body_bytes`` is refused with 413 before
   the route reads it (checked against ``Content-Length`` first, then while receiving, so a
   chunked upload cannot get round it). Packages travel by URL, not in the request.

Settings, lowest precedence first: the defaults, the ``api:`` section of
``$PLUTINO_HOME/etc/plutino.yaml``, then the environment (:mod:`plutino.api.access_settings`);
docs/security.md explains each.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from .access_settings import AccessSettings, load_access_settings
from .origin import host_refusal, origin_refusal

#: Methods that only read.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Paths open to anyone, even with a token: the health check and the API's documentation.
OPEN_PATHS = frozenset({"/ping", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/ui"})
#: Path prefixes open to anyone: the web console's static files (its data comes from the API).
OPEN_PREFIXES = ("/ui/",)
#: Reads that need the token even with ``public_reads``: they answer secrets unmasked.
PRIVATE_READS = ("/data/export", "/ruleset/export")
#: What an unauthenticated public read sees in place of the data directory's path.
HIDDEN_DATA_DIR = "$PLUTINO_HOME"

class AccessGuard:
    """ASGI middleware: Host and Origin, the token, JSON bodies, and the body-size limit.

    ``hidden_path``: the data directory, shown as ``$PLUTINO_HOME`` to unauthenticated readers."""

    def __init__(self, app: Any, settings: AccessSettings, hidden_path: str | None = None) -> None:
        self.app = app
        self.settings = settings
        self._expected = settings.token.encode() if settings.token else None
        self._hidden = [(p, HIDDEN_DATA_DIR.encode()) for p in _spellings(hidden_path)] if hidden_path else []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        headers = dict(scope["headers"])
        refusal = self._browser_refusal(scope, headers)
        if refusal is not None:
            await _refuse(send, 403, "Forbidden", refusal)
            return
        refusal, authenticated = self._token_refusal(method, path, headers.get(b"authorization"))
        if refusal is not None:
            await _refuse(send, 401, "Unauthorized", refusal)
            return
        limit = self.settings.max_body_bytes
        length = headers.get(b"content-length")
        if method in READ_METHODS:
            if not authenticated and self._hidden and method == "GET":
                send = _Rewriting(send, self._hidden)
            await self.app(scope, receive, send)
            return
        has_body = (length is not None and length.strip() not in (b"", b"0")) or b"transfer-encoding" in headers
        given = headers.get(b"content-type")
        if has_body and (given is None or given.split(b";")[0].strip().lower() != b"application/json"):
            await _refuse(send, 415, "UnsupportedMediaType", _not_json(method, path, given))
            return
        if length is not None and length.isdigit() and int(length) > limit:
            await _refuse(send, 413, "RequestTooLarge", _too_large(int(length), limit))
            return
        # Read the (small) body here, so an oversized one is refused before any route sees it.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await _refuse(send, 413, "RequestTooLarge", _too_large(None, limit))
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _browser_refusal(self, scope: dict[str, Any], headers: dict[bytes, bytes]) -> str | None:
        settings = self.settings
        host = headers.get(b"host")
        host_text = host.decode("latin-1") if host is not None else None
        if host_text is not None:
            refusal = host_refusal(host_text, scope, settings.allowed_hosts, settings.bind_host)
            if refusal is not None:
                return refusal
        origin = headers.get(b"origin")
        if origin is not None:
            return origin_refusal(origin.decode("latin-1"), scope, host_text, settings.allowed_origins)
        return None

    def _token_refusal(self, method: str, path: str, given: bytes | None) -> tuple[str | None, bool]:
        """(why the request is refused or None, whether it carries the token)."""
        if self._expected is None:
            return None, True
        if given is not None:
            scheme, _, credentials = given.partition(b" ")
            if scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self._expected):
                return None, True
            return ("the bearer token is not this server's; send 'Authorization: Bearer <token>' with the token the"
                    " server was started with (PLUTINO_TOKEN or api.token in etc/plutino.yaml)"), False
        if method == "OPTIONS" or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return None, False
        public = self.settings.public_reads
        if method in ("GET", "HEAD") and public and not path.startswith(PRIVATE_READS):
            return None, False
        ask = (f"{method} requests to this server need a bearer token: send the header 'Authorization: Bearer"
               " <token>' with the server's token (PLUTINO_TOKEN)")
        if method not in READ_METHODS:
            return ask + ("; GET requests need none" if public else ""), False
        if public:
            return (f"{method} {path} needs the bearer token even though reads are public, because an export holds"
                    " secrets unmasked: send the header 'Authorization: Bearer <token>' with the server's token"
                    " (PLUTINO_TOKEN)"), False
        return ask + ("; to let anyone read without it, set api.public_reads: true in etc/plutino.yaml"
                      " (PLUTINO_PUBLIC_READS=1)"), False


def _spellings(path: str) -> list[bytes]:
    """The data directory's path as it appears in a JSON answer and in a text one."""
    escaped = json.dumps(path)[1:-1]
    return sorted({escaped.encode(), path.encode()}, key=len, reverse=True)


class _Rewriting:
    """A ``send`` that replaces byte strings in a whole (buffered) response body."""

    def __init__(self, send: Any, replacements: list[tuple[bytes, bytes]]) -> None:
        self.send = send
        self.replacements = replacements
        self.start: dict[str, Any] | None = None
        self.chunks: list[bytes] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            return
        if message["type"] != "http.response.body" or self.start is None:
            await self.send(message)
            return
        self.chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(self.chunks)
        for old, new in self.replacements:
            body = body.replace(old, new)
        headers = [(k, v) for k, v in self.start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.send({**self.start, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})


def _not_json(method: str, path: str, given: bytes | None) -> str:
    sent = f"as {given.decode('latin-1')!r}" if given is not None else "without a Content-Type"
    return (f"{method} {path}: the body is sent {sent}, and this API reads JSON bodies only: send the header"
            " 'Content-Type: application/json' (curl: -H 'Content-Type: application/json'); the plutino CLI"
            " sends it")


def _too_large(length: int | None, limit: int) -> str:
    size = f"{length} bytes" if length is not None else f"more than {limit} bytes"
    return (f"the request body is {size}, over the limit of {limit} bytes (max_body_bytes); every body of this"
            " API is a small JSON document (packages are given by URL): check what is being sent, or raise"
            " api.max_body_bytes in etc/plutino.yaml (PLUTINO_MAX_BODY_BYTES)")


async def _refuse(send: Any, status: int, kind: str, message: str) -> None:
    body = json.dumps({"error": 1000, "message": message, "type": kind}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="plutino"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["AccessGuard", "AccessSettings", "HIDDEN_DATA_DIR", "OPEN_PATHS", "READ_METHODS", "load_access_settings"]
