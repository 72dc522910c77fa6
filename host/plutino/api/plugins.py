"""``/plugins``: install, update, delete, list and describe plugins; list the functions they
offer (``/plugins/udfs``); and, beyond eKuiper, check an installed plugin's file
(``/plugins/{kind}s/{name}/check``) and manage the keys whose signed packages are trusted
(``/plugins/trusted_keys``).

One set of routes per kind (``/plugins/sources``, ``/plugins/sinks``, ``/plugins/functions``),
so each path appears in the OpenAPI spec as eKuiper documents it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from plutino.config import KINDS
from plutino.engine.hints import listing
from plutino.packages.wheels import wheel_of
from plutino.secrets import masked

from .deps import get_host
from .errors import BadRequest, Conflict, NotFound
from .models import FunctionList, PluginBody, TrustedKeyBody, TrustedKeyInfo, UdfInfo

router = APIRouter(tags=["plugins"])


def require_plugin(host: Any, kind: str, name: str) -> Any:
    """The store's record of an installed plugin, or a 404 naming the installed ones."""
    record = host.store.get_plugin(kind, name)
    if record is None:
        names = [r.name for r in host.store.list_plugins(kind)]
        raise NotFound(f"{kind} plugin {name} is not installed; installed {kind} plugins: {listing(names)};"
                       f" install it with POST /plugins/{kind}s")
    return record


def _body_name(kind: str, body: PluginBody, path_name: str | None = None) -> str:
    name = body.name if body.name is not None else path_name
    if not name:
        raise BadRequest('the body needs the plugin\'s "name", e.g. {"name": "echo", "file": "file:///tmp/echo.zip"}')
    if path_name is not None and name != path_name:
        raise BadRequest(f"the body names {kind} plugin '{name}', but the path says '{path_name}'; make them the same")
    if not body.file:
        raise BadRequest(f'the body needs "file": the URL of the package zip of {kind} plugin {name}, '
                         "file:///absolute/path.zip or http(s)://...; make one with `plutino plugin pack`")
    return name


def _routes(kind: str) -> None:
    plural = f"{kind}s"

    @router.post(f"/plugins/{plural}", status_code=201, response_class=PlainTextResponse,
                 name=f"install_{kind}_plugin", summary=f"Install a {kind} plugin",
                 responses={201: {"content": {"text/plain": {"example": f"{kind} plugin NAME is created"}}}})
    def install(body: PluginBody, host: Any = Depends(get_host)) -> str:
        """Download (file:// or http(s)://), check and install a plugin package. Nothing changes
        unless every check passes; the plugin is usable at once."""
        name = _body_name(kind, body)
        existing = host.store.get_plugin(kind, name)
        if existing is not None and wheel_of(existing) is None:  # a wheel's: the manager says pip has it
            raise Conflict(f"{kind} plugin {name} is already installed (version {existing.version}); to replace it"
                           f" use PUT /plugins/{plural}/{name}, or DELETE it first")
        host.install_plugin(kind, name, body.file, body.shellParas, body.functions, body.sha256)
        return f"{kind} plugin {name} is created"

    @router.get(f"/plugins/{plural}", response_model=list[str], name=f"list_{kind}_plugins",
                summary=f"List the installed {kind} plugins")
    def list_(host: Any = Depends(get_host)) -> list[str]:
        return [r.name for r in host.plugins.list(kind)]

    @router.get(f"/plugins/{plural}/{{name}}", name=f"describe_{kind}_plugin", summary=f"Describe a {kind} plugin")
    def describe(name: str, host: Any = Depends(get_host)) -> dict[str, Any]:
        """eKuiper's ``{"name", "version"}`` (+ ``functions``), and Plutino's status, error, abi,
        file, sha256, platform, source and installed_at; credentials in ``source`` (the URL it was
        installed from: ``?access_token=``, ``user:pass@``) as ``******``."""
        require_plugin(host, kind, name)
        info = host.plugins.describe(kind, name)
        if kind != "function":
            info.pop("functions", None)
        return masked(info)

    @router.put(f"/plugins/{plural}/{{name}}", response_class=PlainTextResponse, name=f"update_{kind}_plugin",
                summary=f"Update a {kind} plugin")
    def update(name: str, body: PluginBody, host: Any = Depends(get_host)) -> str:
        """Install a newer version; new rule starts use it at once, running rules keep the old code."""
        _body_name(kind, body, name)
        require_plugin(host, kind, name)
        record = host.update_plugin(kind, name, body.file, body.shellParas, body.functions, body.sha256)
        return f"{kind} plugin {name} is updated to {record.version}"

    @router.delete(f"/plugins/{plural}/{{name}}", response_class=PlainTextResponse, name=f"delete_{kind}_plugin",
                   summary=f"Delete a {kind} plugin")
    def delete(name: str, force: bool = False, host: Any = Depends(get_host)) -> str:
        """Uninstall a plugin. Refused (409) while running rules use it, unless ``?force=true``,
        which stops them first."""
        require_plugin(host, kind, name)
        users = host.rules_using(kind, name)
        if users and not force:
            raise Conflict(f"{kind} plugin {name} is used by running rule(s) {', '.join(users)}; stop or delete"
                           " them first, or delete with ?force=true, which stops them")
        stopped = host.delete_plugin(kind, name, force=force)
        return f"{kind} plugin {name} is deleted" + (f"; stopped rules {', '.join(stopped)}" if stopped else "")

    @router.get(f"/plugins/{plural}/{{name}}/check", name=f"check_{kind}_plugin",
                summary=f"Check an installed {kind} plugin's file (Plutino extension)")
    def check(name: str, host: Any = Depends(get_host)) -> dict[str, Any]:
        """Read the installed file's ABI tag and load it in a probe process, as ``plutino plugin
        check`` does: ``{"ok": true, ...}`` with its tag and functions, or ``{"ok": false,
        "refused": {...}}`` (a crash or a hang of the plugin's load is a refusal too)."""
        from plutino.dataplane.probe import probe_plugin

        record = require_plugin(host, kind, name)
        result = probe_plugin(host.data.root / record.file, kind, host.dataplane_settings.probe_timeout_s)
        result.update(status=record.status, error=record.error)
        return masked(result)


for _kind in KINDS:
    _routes(_kind)


@router.post("/plugins/functions/{name}/register", response_class=PlainTextResponse)
def register_functions(name: str, body: FunctionList, host: Any = Depends(get_host)) -> str:
    """eKuiper's function registration. Plutino reads the function list from the plugin itself,
    so this only checks that the names given are among those it offers."""
    require_plugin(host, "function", name)
    host.plugins.register_functions(name, body.functions)
    return f"function plugin {name} function list is registered"


@router.get("/plugins/trusted_keys", response_model=list[TrustedKeyInfo], summary="List the trusted signing keys")
def list_trusted_keys(host: Any = Depends(get_host)) -> list[dict[str, str]]:
    """The keys in ``etc/trusted_keys/`` (Plutino extension): a package signed with one of them
    installs where ``require_signature`` asks for a signature."""
    return [k.to_dict() for k in host.plugins.trusted_keys.list()]


@router.post("/plugins/trusted_keys", status_code=201, response_class=PlainTextResponse,
             summary="Trust a signing key",
             responses={201: {"content": {"text/plain": {"example": "key alice (0f1e2d3c4b5a6978) is trusted"}}}})
def add_trusted_key(body: TrustedKeyBody, host: Any = Depends(get_host)) -> str:
    """Trust packages signed with this Ed25519 public key (``plutino plugin trust NAME.pub``);
    409 when the name or the key is trusted already."""
    key = host.plugins.trusted_keys.add(body.name, body.key)
    return f"key {key.name} ({key.key_id}) is trusted"


@router.delete("/plugins/trusted_keys/{name}", response_class=PlainTextResponse, summary="Stop trusting a signing key")
def delete_trusted_key(name: str, host: Any = Depends(get_host)) -> str:
    """Installed plugins stay installed; new installs signed with the key are refused where a
    signature is required."""
    keys = host.plugins.trusted_keys
    if name not in [k.name for k in keys.list()]:
        raise NotFound(f"no trusted key is named {name}; trusted keys: {listing([k.name for k in keys.list()])}")
    key = keys.delete(name)
    return f"key {key.name} ({key.key_id}) is no longer trusted"


@router.get("/plugins/udfs", response_model=list[str])
def list_udfs(host: Any = Depends(get_host)) -> list[str]:
    """Every function offered by an installed function plugin."""
    return host.plugins.udfs()


@router.get("/plugins/udfs/{function}", response_model=UdfInfo)
def describe_udf(function: str, host: Any = Depends(get_host)) -> dict[str, str]:
    """Which plugin offers a function."""
    names = host.plugins.udfs()
    if function not in names:
        raise NotFound(f"no installed function plugin offers a function named '{function}'; functions: "
                       f"{listing(names)}")
    return host.plugins.describe_udf(function)


__all__ = ["require_plugin", "router"]
