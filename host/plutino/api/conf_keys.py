"""eKuiper's conf key API: the named sections of ``etc/<kind>s/<type>.yaml`` over REST.

- ``GET /metadata/{sources,sinks}/yaml/{type}``: every conf key of a type (eKuiper's list);
- ``GET /metadata/{sources,sinks}/{type}/confKeys``: their names (Plutino addition);
- ``GET|PUT|DELETE /metadata/{sources,sinks}/{type}/confKeys/{key}``: one conf key. PUT takes
  the settings as a JSON object (or, as eKuiper's example shows it, wrapped in the key's name)
  and answers 200 with an empty body, as eKuiper does; so does DELETE.

Secrets are answered as ``******``. The work is done by :class:`plutino.confkeys.ConfKeys`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response

from plutino.confkeys import ConfKeys
from plutino.secrets import masked

from .deps import get_host

router = APIRouter(tags=["conf keys"])


def get_conf_keys(request: Request) -> ConfKeys:
    """The app's :class:`ConfKeys` over its host's data directory (made on first use)."""
    state = request.app.state
    keys = getattr(state, "conf_keys", None)
    if keys is None:
        host = get_host(request)
        keys = state.conf_keys = ConfKeys(host.data, host.registry)
    return keys


def unwrap(key: str, body: Any) -> Any:
    """eKuiper's documented PUT body is ``{"<key>": {...settings}}``; its server reads the
    settings themselves. Both are taken."""
    if isinstance(body, dict) and len(body) == 1 and key in body and isinstance(body[key], dict):
        return body[key]
    return body


def _routes(kind: str) -> None:
    plural = f"{kind}s"

    @router.get(f"/metadata/{plural}/yaml/{{name}}", name=f"{kind}_conf_keys_yaml",
                summary=f"Every conf key of a {kind} type, secrets masked (eKuiper)")
    def yaml_of(name: str, keys: ConfKeys = Depends(get_conf_keys)) -> dict[str, Any]:
        doc = keys.document(kind, name)
        if not doc:
            keys.require_plugin(kind, name)
        return masked(doc)

    @router.get(f"/metadata/{plural}/{{name}}/confKeys", name=f"list_{kind}_conf_keys",
                summary=f"The names of a {kind} type's conf keys")
    def list_(name: str, keys: ConfKeys = Depends(get_conf_keys)) -> list[str]:
        doc = keys.document(kind, name)
        if not doc:
            keys.require_plugin(kind, name)
        return list(doc)

    @router.get(f"/metadata/{plural}/{{name}}/confKeys/{{key}}", name=f"get_{kind}_conf_key",
                summary=f"One conf key of a {kind} type, secrets masked")
    def get(name: str, key: str, keys: ConfKeys = Depends(get_conf_keys)) -> dict[str, Any]:
        return masked(keys.section(kind, name, key))

    @router.put(f"/metadata/{plural}/{{name}}/confKeys/{{key}}", name=f"put_{kind}_conf_key",
                response_class=Response, responses={200: {"description": "Saved (empty body, as in eKuiper)"}},
                summary=f"Create or replace a conf key of a {kind} type")
    def put(name: str, key: str, body: Any = Body(...), keys: ConfKeys = Depends(get_conf_keys)) -> Response:
        """Streams and rules started afterwards use it; running rules keep their config until
        restarted. Unknown properties of a built-in are refused (400, with the closest name)."""
        keys.put(kind, name, key, unwrap(key, body))
        return Response(status_code=200)

    @router.delete(f"/metadata/{plural}/{{name}}/confKeys/{{key}}", name=f"delete_{kind}_conf_key",
                   response_class=Response, responses={200: {"description": "Deleted (empty body, as in eKuiper)"}},
                   summary=f"Delete a conf key of a {kind} type")
    def delete(name: str, key: str, keys: ConfKeys = Depends(get_conf_keys)) -> Response:
        keys.delete(kind, name, key)
        return Response(status_code=200)


for _kind in ("source", "sink"):
    _routes(_kind)


__all__ = ["get_conf_keys", "router", "unwrap"]
