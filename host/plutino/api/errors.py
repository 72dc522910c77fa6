"""The one place where the host's exceptions become HTTP answers.

Every error body has eKuiper's shape, ``{"error": <code>, "message": "..."}``, so scripts
written for eKuiper read it unchanged. ``error`` is eKuiper's numeric code (1000 general,
1002 not found, 1003 I/O, 2001 SQL); Plutino adds ``type`` (the exception's class name, for
programs that want to tell cases apart) and, for SQL, ``line`` and ``col``.

Status codes: 404 for something that does not exist, 409 for a name that is taken or a thing
in use, 400 for everything else the user can fix, 500 for a bug in the host.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from plutino.engine.errors import AlreadyExistsError, NotFoundError, RuleError, SqlError
from plutino.errors import PluginCallError, PluginIOError, PluginRefused, PlutinoError, RegistryError
from plutino.packages.format import PackageConflict, PackageError

log = logging.getLogger("plutino.api")

#: eKuiper's error codes (docs: "Determine the error type by error code").
GENERAL, NOT_FOUND_CODE, IO_CODE, SQL_CODE = 1000, 1002, 1003, 2001


class NotFound(PlutinoError):
    """Something the request names does not exist (a plugin, a function): 404."""


class Conflict(PlutinoError):
    """The request would take a name that is taken, or touch something in use: 409."""


class BadRequest(PlutinoError):
    """The request itself is malformed (a missing field, a path and body that disagree): 400."""


class ErrorBody(BaseModel):
    """eKuiper's error shape, with Plutino's additions."""

    error: int = Field(description="eKuiper's error code: 1000 general, 1002 not found, 1003 I/O, 2001 SQL")
    message: str = Field(description="What is wrong, the values involved, and how to fix it")
    type: str | None = Field(default=None, description="The host's exception class (Plutino extension)")
    line: int | None = Field(default=None, description="SQL errors: 1-based line of the mistake")
    col: int | None = Field(default=None, description="SQL errors: 1-based column of the mistake")


#: (exception class, HTTP status, eKuiper code), most specific first.
_TABLE: tuple[tuple[type[BaseException], int, int], ...] = (
    (NotFoundError, 404, NOT_FOUND_CODE),
    (NotFound, 404, NOT_FOUND_CODE),
    (AlreadyExistsError, 409, GENERAL),
    (Conflict, 409, GENERAL),
    (PackageConflict, 409, GENERAL),
    (SqlError, 400, SQL_CODE),
    (PluginIOError, 400, IO_CODE),
    (PluginRefused, 400, GENERAL),
    (PluginCallError, 400, GENERAL),
    (PackageError, 400, GENERAL),
    (RuleError, 400, GENERAL),
    (RegistryError, 400, GENERAL),
    (BadRequest, 400, GENERAL),
    (PlutinoError, 400, GENERAL),
)

#: The answers every route may give, for the OpenAPI spec.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The request cannot be carried out; the message says why"},
    401: {"model": ErrorBody, "description": "The server has a token and the request lacks it (reads too, unless "
                                             "api.public_reads)"},
    403: {"model": ErrorBody, "description": "The Host or Origin header is not one the server answers "
                                             "(api.allowed_hosts, api.allowed_origins; docs/security.md)"},
    404: {"model": ErrorBody, "description": "A stream, table, rule, plugin or function that does not exist"},
    409: {"model": ErrorBody, "description": "A name that is taken, or a thing in use"},
    413: {"model": ErrorBody, "description": "The request body is over max_body_bytes"},
    415: {"model": ErrorBody, "description": "A request body that is not Content-Type: application/json"},
    503: {"model": ErrorBody, "description": "The pool for this kind of slow work stayed full; retry after the "
                                             "Retry-After header's seconds"},
}


def classify(exc: BaseException) -> tuple[int, int]:
    """``(HTTP status, eKuiper code)`` of a host exception."""
    for cls, status, code in _TABLE:
        if isinstance(exc, cls):
            return status, code
    return 500, GENERAL


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The status and JSON body answering ``exc``."""
    status, code = classify(exc)
    if status == 500:
        message = (f"internal error: {type(exc).__name__}: {exc}; this is a bug in Plutino, please report it"
                   " with the server log (log/plutino.log)")
    else:
        message = str(exc)
    body: dict[str, Any] = {"error": code, "message": message, "type": type(exc).__name__}
    if isinstance(exc, SqlError) and exc.line is not None:
        body["line"], body["col"] = exc.line, exc.col
    return status, body


def install_handlers(app: FastAPI) -> None:
    """Answer every failure in eKuiper's error shape, whatever raised it."""

    @app.exception_handler(PlutinoError)
    async def _plutino(request: Request, exc: PlutinoError) -> JSONResponse:
        status, body = error_body(exc)
        log.info("%s %s -> %d: %s", request.method, request.url.path, status, body["message"])
        return JSONResponse(body, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message = "; ".join(_describe_validation(e) for e in exc.errors())
        body = {"error": GENERAL, "message": f"{message}; see the request shapes in /docs", "type": "BadRequest"}
        return JSONResponse(body, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"no such path: {request.method} {request.url.path}; the API is listed at /docs"
            code = NOT_FOUND_CODE
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; the API is listed at /docs"
            code = GENERAL
        else:
            message, code = str(exc.detail), GENERAL
        return JSONResponse({"error": code, "message": message, "type": "HTTPException"},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        status, body = error_body(exc)
        return JSONResponse(body, status_code=status)


def _describe_validation(error: dict[str, Any]) -> str:
    where = [str(p) for p in error.get("loc", ()) if p != "body"]
    if error.get("type") == "json_invalid":
        return f"the request body is not valid JSON ({error.get('ctx', {}).get('error', error.get('msg'))})"
    if error.get("type") == "missing" and not where:
        return "the request needs a JSON body"
    if error.get("type") == "extra_forbidden":
        return f"unknown field '{'.'.join(where)}' in the request body"
    field = ".".join(where) if where else "the request body"
    got = error.get("input")
    shown = "" if error.get("type") == "missing" else f" (got {got!r})"
    return f"{field}: {error.get('msg', 'invalid')}{shown}"


__all__ = [
    "BadRequest", "Conflict", "ERROR_RESPONSES", "ErrorBody", "NotFound", "classify", "error_body",
    "install_handlers",
]
