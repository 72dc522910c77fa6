"""``/metadata/{sources,sinks,functions}``: each plugin's JSON metadata, for UIs.

An installed plugin's metadata is the ``<name>.json`` its package shipped (eKuiper's format:
``about``, ``properties``, and for function libraries ``functions``), kept in
``etc/<kind>s/``. Built-in plugins have none beyond their name and a one-line description.
The list gives each plugin's name, type ("native" or "builtin"), version and ``about``; the
single-plugin path gives the whole document.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends

from plutino import json_depth
from plutino.config import KINDS
from plutino.engine import BUILTIN_NAMES

from .deps import get_host
from .errors import NotFound

router = APIRouter(tags=["metadata"])


def _document(host: Any, record: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    path = host.data.etc_dir(record.kind) / f"{record.name}.json"
    if path.is_file():
        try:
            loaded = json_depth.loads(path.read_text(encoding="utf-8"))
            doc = loaded if isinstance(loaded, dict) else {"metadata": loaded}
        except (OSError, json.JSONDecodeError) as exc:
            doc = {"error": f"{path.name} cannot be read: {exc}"}
    return {"name": record.name, "type": "native", "version": record.version, **doc}


def _builtin(plugin: Any) -> dict[str, Any]:
    inner = getattr(plugin, "plugin", plugin)  # a sink wrapped for eKuiper's common properties
    summary = (type(inner).__doc__ or "").strip().splitlines()
    return {"name": plugin.name, "type": "builtin", "version": getattr(plugin, "version", ""),
            "about": {"description": {"en_US": summary[0] if summary else f"built-in {plugin.kind} {plugin.name}"}}}


def documents(host: Any, kind: str) -> list[dict[str, Any]]:
    """Every plugin of ``kind``: installed ones from their JSON, then built-ins."""
    docs = [_document(host, r) for r in host.store.list_plugins(kind)]
    installed = {d["name"] for d in docs}
    if kind == "function":
        docs.append({"name": "builtin", "type": "builtin", "version": "",
                     "about": {"description": {"en_US": "Plutino's built-in SQL functions"}},
                     "functions": [{"name": n} for n in sorted(BUILTIN_NAMES)]})
    else:
        docs += [_builtin(p) for p in host.registry.plugins(kind) if p.name not in installed]
    return docs


def _routes(kind: str) -> None:
    plural = f"{kind}s"

    @router.get(f"/metadata/{plural}", name=f"list_{kind}_metadata", summary=f"Metadata of every {kind} plugin")
    def list_(host: Any = Depends(get_host)) -> list[dict[str, Any]]:
        keep = ("name", "type", "version", "about")
        return [{k: d[k] for k in keep if k in d} for d in documents(host, kind)]

    @router.get(f"/metadata/{plural}/{{name}}", name=f"describe_{kind}_metadata",
                summary=f"The metadata document of one {kind} plugin")
    def describe(name: str, host: Any = Depends(get_host)) -> dict[str, Any]:
        docs = documents(host, kind)
        for doc in docs:
            if doc["name"] == name:
                return doc
        raise NotFound(f"no {kind} plugin named '{name}'; {plural}: {', '.join(d['name'] for d in docs) or 'none'}")


for _kind in KINDS:
    _routes(_kind)


__all__ = ["documents", "router"]
