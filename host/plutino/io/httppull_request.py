"""The HTTP side of the ``httppull`` source: one request with a timeout, its templates, and
eKuiper's ``oAuth`` token flow (access, then refresh when the token expires).

Every failure is an :class:`PullError` whose message names the request and what to check, so
the rule's source metrics say what went wrong (``last_exception``) without a traceback.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Mapping

from .gotemplate import Template
from .gotemplate_functions import TemplateError

#: eKuiper's bodyType values and the Content-Type each sends (none: no body).
BODY_TYPES = {
    "none": None,
    "text": "text/plain",
    "json": "application/json",
    "html": "text/html",
    "xml": "application/xml",
    "javascript": "application/javascript",
    "form": "application/x-www-form-urlencoded",
}
MAX_BODY = 64 * 1024 * 1024


class PullError(Exception):
    """A pull that brought nothing: the message says why and what to check (``status``: the
    HTTP status of a non-2xx answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Text:
    """A property that may hold a template (``{{.PullTime}}``): parsed once, rendered per pull."""

    def __init__(self, what: str, source: str) -> None:
        self.source = source
        try:
            self._template = Template(source) if "{{" in source else None
        except TemplateError as exc:
            raise ValueError(f"httppull source: {what} {source!r} is not a valid template: {exc}") from None

    def render(self, values: Mapping[str, Any]) -> str:
        if self._template is None:
            return self.source
        try:
            return self._template.render(dict(values))
        except TemplateError as exc:
            raise PullError(f"httppull source: cannot fill in {self.source!r}: {exc}") from None


def ssl_context(insecure: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def call(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    timeout: float,
    context: ssl.SSLContext | None,
) -> bytes:
    """The body of the answer to one request; a :class:`PullError` for anything but a 2xx."""
    what = f"httppull source: {method} {url}"
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return resp.read(MAX_BODY)
    except urllib.error.HTTPError as err:
        text = err.read(300).decode("utf-8", "replace").strip()
        raise PullError(
            f"{what} answered {err.code} {err.reason}" + (f": {text}" if text else "") + "; check the url, "
            "method, headers and body the server expects",
            err.code,
        ) from None
    except urllib.error.URLError as err:
        reason = err.reason
        if isinstance(reason, ConnectionRefusedError):
            detail = "connection refused; check that the server runs and the url's host and port"
        elif isinstance(reason, (socket.timeout, TimeoutError)):
            detail = f"no answer within {int(timeout * 1000)} ms; raise 'timeout' or check the server"
        elif isinstance(reason, ssl.SSLError):
            detail = f"TLS failed ({reason}); set insecureSkipVerify: true for a self-signed certificate"
        elif isinstance(reason, socket.gaierror):
            detail = f"unknown host ({reason.strerror}); check the url"
        else:
            detail = f"{reason}; check the url"
        raise PullError(f"{what} failed: {detail}") from None
    except (socket.timeout, TimeoutError):
        raise PullError(f"{what} failed: no answer within {int(timeout * 1000)} ms; raise 'timeout'") from None
    except (OSError, ValueError) as exc:  # a reset connection, a malformed answer
        raise PullError(f"{what} failed: {exc}") from None


def encode_body(text: str, body_type: str) -> bytes | None:
    """The request body as sent for ``bodyType`` (``form``: a JSON object becomes a=1&b=2)."""
    if body_type == "none" or not text:
        return None
    if body_type == "form":
        try:
            fields = json.loads(text)
        except ValueError:
            fields = None
        if isinstance(fields, dict):
            form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}
            return urllib.parse.urlencode(form).encode()
    return text.encode()


def json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise PullError(f"httppull source: {what} is not JSON ({exc}): {data[:200]!r}") from None
    if not isinstance(value, dict):
        raise PullError(f"httppull source: {what} must be a JSON object, got {data[:200]!r}")
    return value


def check_body_code(data: bytes, url: str) -> None:
    """``responseType: body``: the answer is JSON whose ``code`` field (of each object) is 2xx."""
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise PullError(f"httppull source: the answer of {url} is not JSON ({exc}); "
                        "responseType 'body' needs JSON") from None
    for item in value if isinstance(value, list) else [value]:
        code = item.get("code") if isinstance(item, dict) else None
        if isinstance(code, bool) or not isinstance(code, (int, float)):
            raise PullError(
                f"httppull source: the answer of {url} has no numeric 'code' field (responseType is 'body'); "
                "use responseType: code for a server that answers with HTTP status codes"
            )
        if not 200 <= code <= 299:
            raise PullError(f"httppull source: the answer of {url} has code {code:g}: {data[:200]!r}")


class OAuth:
    """eKuiper's ``oAuth``: POST ``access.url`` for a token, POST ``refresh.url`` when it expires.

    The access answer (a JSON object) and then each refresh answer, merged over it, are the
    template values of the pull's url, headers and body (``Authorization: Bearer {{.token}}``)
    and of the refresh's headers. ``access.expire`` (seconds, may be a template over the access
    answer, e.g. ``'{{.expires_in}}'``) says when to refresh; without it the token never expires.
    """

    def __init__(self, config: Mapping[str, Any], timeout: float, context: ssl.SSLContext | None) -> None:
        access = config.get("access")
        if not isinstance(access, Mapping) or not access.get("url"):
            raise ValueError(
                "httppull source: oAuth needs access.url, e.g. "
                "oAuth: {access: {url: 'https://host/api/token', body: '{\"code\": \"...\"}', expire: '3600'}}"
            )
        refresh = config.get("refresh") or {}
        if not isinstance(refresh, Mapping):
            raise ValueError("httppull source: oAuth.refresh must be an object with url, headers and body")
        self.access_url = str(access["url"])
        self.access_body = str(access.get("body") or "")
        self.expire = Text("oAuth.access.expire", str(access.get("expire") or ""))
        self.refresh_url = str(refresh.get("url") or "")
        self.refresh_body = Text("oAuth.refresh.body", str(refresh.get("body") or ""))
        headers = refresh.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise ValueError("httppull source: oAuth.refresh.headers must map header names to values")
        self.refresh_headers = {str(k): Text(f"oAuth.refresh header {k}", str(v)) for k, v in headers.items()}
        self.timeout = timeout
        self.context = context
        self.values: dict[str, Any] | None = None
        self.expires_at = float("inf")

    def _post(self, url: str, headers: Mapping[str, str], body: str) -> dict[str, Any]:
        data = call("POST", url, {"Content-Type": "application/json", **headers}, body.encode() or None,
                    self.timeout, self.context)
        return json_object(data, f"the token answer of {url}")

    def tokens(self) -> dict[str, Any]:
        """The current token values, fetched or refreshed first when needed."""
        if self.values is None:
            self.values = self._post(self.access_url, {}, self.access_body)
            self._set_expiry()
        elif time.monotonic() >= self.expires_at:
            if self.refresh_url:
                headers = {k: t.render(self.values) for k, t in self.refresh_headers.items()}
                refreshed = self._post(self.refresh_url, headers, self.refresh_body.render(self.values))
                self.values = {**self.values, **refreshed}
            else:
                self.values = self._post(self.access_url, {}, self.access_body)
            self._set_expiry()
        return self.values

    def _set_expiry(self) -> None:
        assert self.values is not None
        text = self.expire.render(self.values).strip()
        if not text:
            self.expires_at = float("inf")
            return
        try:
            self.expires_at = time.monotonic() + float(text)
        except ValueError:
            raise PullError(f"httppull source: oAuth.access.expire gave {text!r}, not a number of seconds") from None

    def forget(self) -> None:
        """After a 401/403: fetch a new token on the next pull."""
        self.values = None


__all__ = ["BODY_TYPES", "OAuth", "PullError", "Text", "call", "check_body_code", "encode_body", "ssl_context"]
