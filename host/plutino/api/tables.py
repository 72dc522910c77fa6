"""``/tables``: eKuiper's table API over the engine's catalog (tables share it with streams)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from plutino.engine.streams import parse_create_stream
from plutino.secrets import masked

from .deps import get_host
from .errors import BadRequest
from .models import StreamBody

router = APIRouter(tags=["tables"])


@router.post("/tables", status_code=201, response_class=PlainTextResponse,
             responses={201: {"content": {"text/plain": {"example": "Table demo is created."}}}})
def create_table(body: StreamBody, host: Any = Depends(get_host)) -> Response:
    """Run a table statement (eKuiper's ``POST /tables``): CREATE TABLE answers 201 and a text,
    DROP TABLE a text, DESCRIBE TABLE and SHOW TABLES their JSON."""
    sql = body.sql.strip()
    if sql.upper().startswith("CREATE") and not parse_create_stream(sql).is_table:
        raise BadRequest("POST /tables takes CREATE TABLE; create a stream with POST /streams")
    result = host.engine.exec_stream_sql(sql)
    if isinstance(result, str):
        return PlainTextResponse(result, status_code=201 if result.endswith("created.") else 200)
    return JSONResponse(result)


@router.get("/tables", response_model=list[str])
def list_tables(kind: str | None = Query(None, description='"scan" or "lookup": only tables of that KIND'),
                host: Any = Depends(get_host)) -> list[str]:
    """The names of every table (eKuiper's ``GET /tables``, with its ``?kind=`` filter)."""
    if kind is not None and kind.lower() not in ("scan", "lookup"):
        raise BadRequest(f"kind={kind!r} is not a table kind; use kind=scan or kind=lookup")
    names = host.engine.list_tables()
    if kind is None:
        return names
    return [n for n in names if host.engine.get_definition(n, table=True).kind == kind.lower()]


@router.get("/tables/{name}")
def describe_table(name: str, host: Any = Depends(get_host)) -> dict[str, Any]:
    """A table's fields, options and statement (eKuiper's shape: Name, StreamFields, Options);
    credentials written in them as ``******``."""
    return masked(host.engine.describe_stream(name, table=True))


@router.put("/tables/{name}", response_class=PlainTextResponse)
def update_table(name: str, body: StreamBody, host: Any = Depends(get_host)) -> str:
    """Replace a table's definition; rules use it from their next start."""
    table = parse_create_stream(body.sql)
    if not table.is_table or table.name != name:
        raise BadRequest(f"PUT /tables/{name} takes CREATE TABLE {name} (...) WITH (...), got: {body.sql.strip()[:80]}")
    host.engine.replace_stream(body.sql)
    return f"Table {name} is updated."


@router.delete("/tables/{name}", response_class=PlainTextResponse)
def drop_table(name: str, force: bool = False, host: Any = Depends(get_host)) -> str:
    """Drop a table; refused (400) while rules join it, unless ``?force=true``."""
    host.engine.drop_stream(name, force=force, table=True)
    return f"Table {name} is dropped."


__all__ = ["router"]
