"""A minimal client of the Plutino REST API (standard library only), for the CLI and scripts.

    from plutino.api.client import Client
    Client("http://127.0.0.1:9081").call("GET", "/rules")   # -> [{"id": "demo", "status": "running"}]

The server is named as a port (``9081``: on 127.0.0.1), ``host:port`` (``localhost:9081``) or
a URL (``http://127.0.0.1:9081``, ``https://host/prefix``): :func:`server_url`. JSON answers
come back as Python values, text answers as a str; an error answer or an unreachable server
raises :class:`ServerError` with a message for the user. A server started
with a token (``PLUTINO_TOKEN``) is sent it as ``Authorization: Bearer ...``: pass ``token``,
or set ``PLUTINO_TOKEN`` for the client too.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from plutino.secrets import mask_text

#: How a server may be named, for messages.
URL_FORMS = "a port (9081), host:port (localhost:9081) or a URL (http://127.0.0.1:9081)"


class ServerError(Exception):
    """The server answered with an error, or could not be reached. ``str(e)`` is for the user."""


def server_url(text: str) -> str:
    """The base URL of the server ``text`` names: a port (on 127.0.0.1), ``host:port`` or an
    http(s) URL. ``ValueError`` says what is wrong with it (the caller names the forms)."""
    text = text.strip()
    if not text:
        raise ValueError("it is empty")
    if any(c.isspace() for c in text):
        raise ValueError("it has a space in it")
    if text.isdigit():
        if not 0 < int(text) < 65536:
            raise ValueError(f"port {text} is not between 1 and 65535")
        return f"http://127.0.0.1:{int(text)}"
    url = text if "://" in text else f"http://{text}"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"its scheme is {parts.scheme!r}, not http or https")
    if not parts.hostname:
        raise ValueError("it names no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{parts.netloc.rpartition(':')[2]!r} is not a port number") from None
    if port == 0:
        raise ValueError("port 0 is not a server's port")
    if port is None and "://" not in text:
        raise ValueError("it names no port")
    if parts.query or parts.fragment:
        raise ValueError("a server's address has no ?query or #fragment")
    return url.rstrip("/")


class Client:
    """A minimal JSON-over-HTTP client of the Plutino REST API (stdlib only)."""

    def __init__(self, url: str, timeout: float = 60.0, token: str | None = None) -> None:
        try:
            self.url = server_url(url)
        except ValueError as exc:
            raise ServerError(f"{mask_text(url)!r} does not name a Plutino server: {exc}; give {URL_FORMS}") from None
        self.timeout = timeout
        self.token = token if token is not None else os.environ.get("PLUTINO_TOKEN") or None

    def call(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        """The decoded answer: JSON as Python values, text as a str."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                return _decode(response.headers.get("Content-Type", ""), response.read())
        except urllib.error.HTTPError as exc:
            answer = _decode(exc.headers.get("Content-Type", ""), exc.read())
            if isinstance(answer, dict) and "message" in answer:
                raise ServerError(str(answer["message"])) from None
            raise ServerError(f"{method} {path}: HTTP {exc.code}: {answer}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServerError(f"cannot reach the Plutino server at {mask_text(self.url)} ({reason}); start it with"
                              " `plutino serve`, or point --url (or PLUTINO_URL) at it") from None


def _decode(content_type: str, raw: bytes) -> Any:
    text = raw.decode("utf-8", "replace")
    if "json" in content_type:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text


__all__ = ["URL_FORMS", "Client", "ServerError", "server_url"]
