"""``/rules``: eKuiper's rule API. Changes go through the Host, which keeps each rule's
desired state (running or stopped) in the store for the next start."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response

from plutino.engine.ekuiper_status import list_item, topo
from plutino.engine.ekuiper_status import rule_status as ekuiper_rule_status
from plutino.errors import PlutinoError
from plutino.secrets import MASK, mask_text, masked, masked_texts, masks_left, restore_masked

from .deps import get_host
from .errors import BadRequest
from .models import RuleBody, RuleListItem
from .query import QUERY_PREFIX

router = APIRouter(tags=["rules"])


def _refuse_masks(rule: dict[str, Any], kept: bool) -> None:
    """A secret still ``******`` would be stored as six asterisks: say so instead."""
    left = masks_left(rule)
    if left:
        where = ("the stored rule has no value there to keep" if kept else
                 f"{MASK} keeps a stored value only when a rule is updated (PUT /rules/{{id}})")
        raise BadRequest(f"'{left[0]}' of rule '{rule.get('id')}' is {MASK}, a masked secret, and {where};"
                         " send the secret itself")


def _check_id(rule: dict[str, Any]) -> None:
    rule_id = rule.get("id")
    if isinstance(rule_id, str) and rule_id.startswith(QUERY_PREFIX):
        raise BadRequest(f"rule id '{rule_id}' starts with '{QUERY_PREFIX}', which is kept for the temporary "
                         "rules of POST /query; choose another id")


@router.post("/rules", status_code=201, response_class=PlainTextResponse,
             responses={201: {"content": {"text/plain": {"example": "Rule r1 was created successfully."}}}})
def create_rule(body: RuleBody, host: Any = Depends(get_host)) -> str:
    """Check a rule completely (SQL, stream, functions, sinks and their configuration), store it
    and start it (unless ``options.triggered`` is false)."""
    rule = body.to_rule()
    _check_id(rule)
    _refuse_masks(rule, kept=False)
    created = host.create_rule(rule)
    return f"Rule {created.id} was created successfully."


@router.post("/rules/validate")
def validate_rule(body: RuleBody, host: Any = Depends(get_host)) -> dict[str, Any]:
    """Check a rule as POST /rules would, without creating it: 200 ``{"valid": true}`` or the
    error that creating it would give."""
    rule = body.to_rule()
    _refuse_masks(rule, kept=False)
    host.engine.validate_rule(rule)
    return {"valid": True}


@router.get("/rules", response_model=list[RuleListItem])
async def list_rules(request: Request) -> Response:
    """Every rule: ``{"id", "name", "status", "message"}``, eKuiper's shape: ``status`` is
    ``running`` or ``stopped`` (``starting``/``stopping`` while a worker acts on it), ``message``
    why it stopped (``canceled manually``, ``end of stream``, an error), ``""`` while running."""
    # Answered on the event loop from the control plane's own record (no worker is asked, and
    # no request waits in the thread pool's queue behind creates and deletes), and serialised
    # directly: validating 10,000 items against the response model took longer than the rest.
    host = get_host(request)
    names = {r.id: r.raw.get("name") for r in host.catalog.rules() if r.raw.get("name")}
    items = [list_item(item, names.get(item["id"])) for item in host.list_rules()]
    for item in items:
        if item.get("message"):
            item["message"] = mask_text(item["message"])
    return Response(orjson.dumps(items), media_type="application/json")


@router.get("/rules/{rule_id}")
def describe_rule(rule_id: str, host: Any = Depends(get_host)) -> dict[str, Any]:
    """The rule as it was submitted, its secrets (passwords, tokens, credentials in URLs) as ``******``."""
    return masked(host.describe_rule(rule_id))


@router.put("/rules/{rule_id}", response_class=PlainTextResponse)
def update_rule(rule_id: str, body: RuleBody, host: Any = Depends(get_host)) -> str:
    """Replace a rule; a running rule restarts with the new definition. A secret sent back as
    ``******`` (as GET shows it) keeps the stored value."""
    rule = body.to_rule()
    given = rule.setdefault("id", rule_id)
    if given != rule_id:
        raise BadRequest(f"the body has id '{given}', but the path says '{rule_id}'; make them the same")
    try:
        stored = host.engine.describe_rule(rule_id)
    except PlutinoError:
        stored = None  # no such rule: update_rule says so
    if stored is not None:
        rule = restore_masked(rule, stored)
        _refuse_masks(rule, kept=True)
    host.update_rule(rule)
    return f"Rule {rule_id} was updated successfully."


@router.delete("/rules/{rule_id}", response_class=PlainTextResponse)
def delete_rule(rule_id: str, host: Any = Depends(get_host)) -> str:
    """Stop (flushing its sinks) and delete a rule."""
    host.delete_rule(rule_id)
    return f"Rule {rule_id} is dropped."


@router.post("/rules/{rule_id}/start", response_class=PlainTextResponse)
def start_rule(rule_id: str, host: Any = Depends(get_host)) -> str:
    host.start_rule(rule_id)
    return f"Rule {rule_id} was started"


@router.post("/rules/{rule_id}/stop", response_class=PlainTextResponse)
def stop_rule(rule_id: str, host: Any = Depends(get_host)) -> str:
    host.stop_rule(rule_id)
    return f"Rule {rule_id} was stopped."


@router.post("/rules/{rule_id}/restart", response_class=PlainTextResponse)
def restart_rule(rule_id: str, host: Any = Depends(get_host)) -> str:
    host.restart_rule(rule_id)
    return f"Rule {rule_id} was restarted"


@router.get("/rules/{rule_id}/status")
def rule_status(rule_id: str, host: Any = Depends(get_host)) -> dict[str, Any]:
    """eKuiper's rule status: ``status`` (``running``/``stopped``), ``message`` (why it stopped),
    ``lastStartTimestamp``, ``lastStopTimestamp``, ``nextStartTimestamp``, then every node's
    metrics (eKuiper's names: ``source_<stream>_0_records_in_total``, ...,
    ``sink_<name>_<i>_0_records_out_total``), plus each plugin function's calls."""
    return masked_texts(ekuiper_rule_status(host.rule_status(rule_id)))


@router.get("/rules/{rule_id}/topo")
def rule_topo(rule_id: str, host: Any = Depends(get_host)) -> dict[str, Any]:
    """eKuiper's rule topology: ``sources`` and ``edges`` (node -> the nodes it feeds), with
    eKuiper's node names (``source_demo``, ``op_1_filter``, ``sink_mqtt_0``)."""
    return topo(host.rule_status(rule_id))


__all__ = ["router"]
