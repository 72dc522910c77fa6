"""Who may change what, and how much a request may send: the API's front door.

Two guards, both pure ASGI (they run before routing, for every path, at no cost per GET):

- **A bearer token** (optional). When set, every request that can change something (any
  method but GET, HEAD and OPTIONS) must carry ``Authorization: Bearer <token>``; reading
  stays open, as eKuiper's API is. Without it: 401 in the API's error shape.
- **A body-size limit.** A request body over ``max_body_bytes`` is refused with 413 before
  the route reads it (checked against ``Content-Length`` first, then while receiving, so a
  chunked upload cannot get round it). Every body of this API is a small JSON document:
  packages travel by URL, not in the request.

Settings, lowest precedence first: the defaults, the ``api:`` section of
``$PLUTINO_HOME/etc/plutino.yaml`` (``token``, ``max_body_bytes``), then the environment
(``PLUTINO_TOKEN``, ``PLUTINO_MAX_BODY_BYTES``). The server binds 127.0.0.1 unless told
otherwise (``--host``); set a token before listening on any other interface.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plutino.config import DataDir
from plutino.errors import PlutinoError

#: Methods that only read: open even when a token is set.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class AccessSettings:
    """The API's guards. ``token`` None: no token needed (the default, on loopback)."""

    token: str | None = None
    max_body_bytes: int = 1024 * 1024


def load_access_settings(data: DataDir | None, environ: Mapping[str, str] | None = None) -> AccessSettings:
    """Defaults, overlaid by ``api:`` in ``etc/plutino.yaml``, overlaid by the environment."""
    token: str | None = None
    limit = AccessSettings.max_body_bytes
    path = data.settings_file if data is not None else None
    if path is not None and path.is_file():
        import yaml

        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise PlutinoError(f"{path} is not valid YAML ({exc}); fix or remove the file") from exc
        section = doc.get("api", {}) if isinstance(doc, dict) else {}
        if not isinstance(section, dict):
            raise PlutinoError(f"{path}: 'api' must be a mapping with token and max_body_bytes, got {section!r}")
        unknown = sorted(set(section) - {"token", "max_body_bytes"})
        if unknown:
            raise PlutinoError(f"{path}: unknown setting api.{unknown[0]}; known: api.token, api.max_body_bytes")
        token = section.get("token", token)
        limit = _positive(section.get("max_body_bytes", limit), f"{path}: api.max_body_bytes")
    env = os.environ if environ is None else environ
    token = env.get("PLUTINO_TOKEN", token)
    if "PLUTINO_MAX_BODY_BYTES" in env:
        limit = _positive(env["PLUTINO_MAX_BODY_BYTES"], "PLUTINO_MAX_BODY_BYTES")
    if token is not None and not isinstance(token, str):
        raise PlutinoError(f"the API token must be a string, got {type(token).__name__}; quote it in the YAML")
    return AccessSettings(token=token or None, max_body_bytes=limit)


def _positive(value: Any, origin: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1 or isinstance(value, bool):
        raise PlutinoError(f"{origin} = {value!r} is not a positive number of bytes (default 1048576)")
    return number


class AccessGuard:
    """ASGI middleware: the token on mutating requests, and the body-size limit."""

    def __init__(self, app: Any, settings: AccessSettings) -> None:
        self.app = app
        self.settings = settings
        self._expected = settings.token.encode() if settings.token else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if self._expected is not None and method not in READ_METHODS:
            given = dict(scope["headers"]).get(b"authorization")
            if given is None:
                await _refuse(send, 401, "Unauthorized", f"{method} requests to this server need a bearer token:"
                              " send the header 'Authorization: Bearer <token>' with the server's token"
                              " (PLUTINO_TOKEN); GET requests need none")
                return
            scheme, _, credentials = given.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(credentials.strip(), self._expected):
                await _refuse(send, 401, "Unauthorized", "the bearer token is not this server's; send"
                              " 'Authorization: Bearer <token>' with the token the server was started with"
                              " (PLUTINO_TOKEN or api.token in etc/plutino.yaml)")
                return
        limit = self.settings.max_body_bytes
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _refuse(send, 413, "RequestTooLarge", _too_large(int(length), limit))
            return
        if method in READ_METHODS:
            await self.app(scope, receive, send)
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


__all__ = ["AccessGuard", "AccessSettings", "READ_METHODS", "load_access_settings"]
