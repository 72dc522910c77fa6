"""Refusing a request body nested too deeply, before any route reads it.

A JSON body a thousand levels deep made the JSON reader raise ``RecursionError`` (a 500); one
a few hundred deep was read, and broke what walked it next (the store, the worker's pickling).
No body of this API needs more than a few levels, so a body nested deeper than
:data:`plutino.json_depth.MAX_JSON_DEPTH` is answered 400 in the API's error shape, naming
the limit and the place, the same way a body that is not JSON is.
"""

from __future__ import annotations

import json
from typing import Any

from plutino.json_depth import MAX_JSON_DEPTH, JsonTooDeep, too_deep_at


class JsonDepthGuard:
    """ASGI middleware: reads a request's (small, size-limited) body and refuses it when it
    nests deeper than ``limit``; passes it on unchanged otherwise."""

    def __init__(self, app: Any, limit: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        kind = dict(scope["headers"]).get(b"content-type", b"")
        if kind and b"json" not in kind:
            await self.app(scope, receive, send)
            return
        messages = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        at = too_deep_at(body, self.limit)
        if at is not None:
            problem = JsonTooDeep(body.decode("utf-8", "replace"), at, self.limit)
            await _refuse(send, f"the request body is not valid JSON ({problem}); see the request shapes in /docs")
            return

        async def replay() -> dict[str, Any]:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


async def _refuse(send: Any, message: str) -> None:
    body = json.dumps({"error": 1000, "message": message, "type": "BadRequest"}).encode()
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


__all__ = ["JsonDepthGuard"]
