"""``POST /query`` (Plutino extension): run a SELECT against a stream for a number of rows or
seconds and return the rows (:mod:`plutino.engine.adhoc_query`); ``plutino query "SQL"`` prints
them as a table."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from plutino.engine.adhoc_query import QUERY_PREFIX

from .deps import get_host
from .models import QueryBody, QueryResult

router = APIRouter(tags=["query"])


@router.post("/query", response_model=QueryResult)
def query(body: QueryBody, host: Any = Depends(get_host)) -> dict[str, Any]:
    """Run a SELECT over a stream as a temporary rule and return up to ``limit`` rows,
    waiting at most ``timeout`` seconds (``complete`` says whether the limit or the end of the
    stream was reached)."""
    return host.query(body.sql, body.limit, body.timeout)


__all__ = ["QUERY_PREFIX", "router"]
