"""eKuiper's data import and export, and its older ruleset import and export.

- ``GET /data/export`` (``POST`` with a JSON list of rule ids: those rules and their streams):
  the document, as a download (``configuration.json``);
- ``POST /data/import`` ``{"content": "<the document>"}`` or ``{"file": "file:///..."}``,
  ``?partial=1`` to keep what exists, ``?stop=1`` to store everything and restart: the server
  exits about a second after answering, and its supervisor starts it again (eKuiper's), which
  starts the imported rules. 200 ``{"ErrorMsg": "", "ConfigResponse": {...}}`` when every item
  is imported; 400 in eKuiper's error shape naming each failed item, with the same
  ``ConfigResponse`` (section -> name -> error) beside it;
- ``GET /data/import/status``: the last import's ``ConfigResponse``;
- ``POST /ruleset/import`` (same body): creates the streams, tables and rules that do not
  exist yet, answering ``imported 1 streams, 0 tables and 2 rules``;
  ``GET|POST /ruleset/export``: streams, tables and rules.

The work is done by :class:`plutino.data_io.DataTransfer`. An export holds every secret as it is
stored, not masked (as eKuiper's does), so that importing it restores a working server; that is why
the exports need the token even when ``api.public_reads`` opens other reads (docs/security.md).
"""

from __future__ import annotations

import json
import os
import signal
import threading
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict

from plutino.data_io import DataTransfer, ImportFailed
from plutino.secrets import masked_texts

from .conf_keys import get_conf_keys
from .deps import get_host
from .errors import GENERAL

router = APIRouter(tags=["data"])
STOP_DELAY_S = 1.0


class ImportBody(BaseModel):
    """eKuiper's import body: the document as text (``content``) or where to read it (``file``)."""

    model_config = ConfigDict(extra="forbid")
    content: Any = None
    file: str | None = None


def get_transfer(request: Request) -> DataTransfer:
    state = request.app.state
    transfer = getattr(state, "data_transfer", None)
    if transfer is None:
        transfer = state.data_transfer = DataTransfer(get_host(request), get_conf_keys(request))
    return transfer


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def _failed(exc: ImportFailed, full: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"error": GENERAL, "message": str(exc), "type": "ImportFailed", "ErrorMsg": "process error",
                         "ConfigResponse": full}, status_code=400)


def _stop_soon() -> None:
    """eKuiper's ``stop=1``: exit after the answer is sent, the way SIGTERM stops the server
    (rules stopped, sinks flushed, store closed)."""
    timer = threading.Timer(STOP_DELAY_S, os.kill, args=(os.getpid(), signal.SIGTERM))
    timer.daemon = True
    timer.start()


@router.post("/data/import", summary="Import streams, tables, rules and conf keys (eKuiper)")
def data_import(body: ImportBody, partial: str | None = None,
                stop: str | None = Query(None, include_in_schema=False),
                transfer: DataTransfer = Depends(get_transfer)) -> Any:
    doc = transfer.read(body.content, body.file)
    try:
        status = transfer.import_(doc, partial=_flag(partial), reboot=_flag(stop))
    except ImportFailed as exc:
        if _flag(stop):
            _stop_soon()
        return _failed(exc, transfer.last_status)
    if _flag(stop):
        _stop_soon()
    return {"ErrorMsg": "", "ConfigResponse": status}


@router.get("/data/import/status", summary="The errors of the last import, by section and name")
def data_import_status(transfer: DataTransfer = Depends(get_transfer)) -> dict[str, Any]:
    return masked_texts(transfer.last_status)


def _download(doc: dict[str, Any]) -> Response:
    return Response(json.dumps(doc, indent=2), media_type="application/json",
                    headers={"Content-Disposition": "attachment; filename=configuration.json"})


@router.get("/data/export", response_class=Response, summary="Export everything as one JSON document (eKuiper)")
def data_export(transfer: DataTransfer = Depends(get_transfer)) -> Response:
    return _download(transfer.export())


@router.post("/data/export", response_class=Response, summary="Export the given rules and their streams")
def data_export_rules(rules: list[str] = Body(...), transfer: DataTransfer = Depends(get_transfer)) -> Response:
    return _download(transfer.export(rules))


@router.post("/ruleset/import", response_class=PlainTextResponse,
             summary="Create the streams, tables and rules of a ruleset that do not exist yet")
def ruleset_import(body: ImportBody, transfer: DataTransfer = Depends(get_transfer)) -> Any:
    doc = transfer.read(body.content, body.file)
    try:
        streams, tables, rules = transfer.import_ruleset(doc)
    except ImportFailed as exc:
        return _failed(exc, exc.status)
    return f"imported {streams} streams, {tables} tables and {rules} rules"


def _ruleset(transfer: DataTransfer) -> Response:
    return Response(json.dumps(transfer.ruleset(), indent=2), media_type="application/json",
                    headers={"Content-Disposition": "attachment; filename=ruleset.json"})


@router.get("/ruleset/export", response_class=Response, summary="Export streams, tables and rules (eKuiper's ruleset)")
def ruleset_export(transfer: DataTransfer = Depends(get_transfer)) -> Response:
    return _ruleset(transfer)


@router.post("/ruleset/export", response_class=Response, summary="Export streams, tables and rules (eKuiper's POST)")
def ruleset_export_post(transfer: DataTransfer = Depends(get_transfer)) -> Response:
    return _ruleset(transfer)


__all__ = ["get_transfer", "router"]
