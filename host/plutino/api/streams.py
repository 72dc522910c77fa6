"""``/streams``: eKuiper's stream API over the engine's catalog."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from plutino.engine.streams import parse_create_stream
from plutino.secrets import masked

from .deps import get_host
from .errors import BadRequest
from .models import StreamBody

router = APIRouter(tags=["streams"])


@router.post("/streams", status_code=201, response_class=PlainTextResponse,
             responses={201: {"content": {"text/plain": {"example": "Stream demo is created."}}}})
def create_stream(body: StreamBody, host: Any = Depends(get_host)) -> Response:
    """Run a stream statement: CREATE STREAM answers 201 and a text; DROP STREAM a text;
    DESCRIBE STREAM and SHOW STREAMS their JSON (as eKuiper's ``POST /streams`` does)."""
    result = host.engine.exec_stream_sql(body.sql)
    if isinstance(result, str):
        created = result.endswith("created.")
        return PlainTextResponse(result, status_code=201 if created else 200)
    return JSONResponse(result)


@router.get("/streams", response_model=list[str])
def list_streams(host: Any = Depends(get_host)) -> list[str]:
    """The names of every stream."""
    return host.engine.list_streams()


@router.get("/streams/{name}")
def describe_stream(name: str, host: Any = Depends(get_host)) -> dict[str, Any]:
    """A stream's fields, options and statement (eKuiper's shape: Name, StreamFields, Options);
    credentials written in them (a URL's ``user:pass@``) as ``******``."""
    return masked(host.engine.describe_stream(name))


@router.put("/streams/{name}", response_class=PlainTextResponse)
def update_stream(name: str, body: StreamBody, host: Any = Depends(get_host)) -> str:
    """Replace a stream's definition; rules use it from their next start."""
    stream = parse_create_stream(body.sql)
    if stream.name != name:
        raise BadRequest(f"the statement defines stream '{stream.name}', but the path says '{name}'; "
                         f"PUT /streams/{stream.name}, or name the stream {name} in the statement")
    host.engine.replace_stream(body.sql)
    return f"Stream {name} is updated."


@router.delete("/streams/{name}", response_class=PlainTextResponse)
def drop_stream(name: str, force: bool = False, host: Any = Depends(get_host)) -> str:
    """Drop a stream; refused (400) while rules read it, unless ``?force=true`` (eKuiper's):
    then the definition is dropped and the rules are left as they are."""
    host.engine.drop_stream(name, force=force)
    return f"Stream {name} is dropped."


__all__ = ["router"]
