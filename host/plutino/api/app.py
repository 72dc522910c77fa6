"""The FastAPI application: eKuiper's REST API over a :class:`plutino.host.Host`.

``create_app(host)`` assembles the routers; the host is reached by each route through
``request.app.state.host``. In front of them all stands :class:`~plutino.api.access.AccessGuard`:
the Host and Origin checks, the optional bearer token, JSON bodies only and the body-size limit.
The app does not start or stop the host: whoever made the host owns it (``plutino serve``, a test).
``create_app(None)`` gives an app whose only use is its OpenAPI spec
(``python -m plutino.api.openapi``).
"""

from __future__ import annotations

import platform
import sys
import time
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response

from plutino import __version__

from . import conf_keys, console, data_io, metadata, metrics, plugins, query, rules, streams, tables
from .access import AccessGuard, AccessSettings, load_access_settings
from .deps import get_host
from .errors import ERROR_RESPONSES, install_handlers
from .json_guard import JsonDepthGuard
from .models import ServerInfo
from .work_pools import WorkPools

DESCRIPTION = """\
Plutino's REST API. Paths, bodies, status codes and the error shape `{"error": code, "message": "..."}`
follow eKuiper's (default port 9081), so eKuiper scripts and tools work unchanged. Additions are on
new paths: `/plugins/{kind}s/{name}/check`, `/query` and `/metrics`. See docs/rest.md.

Request bodies are JSON and must be sent with `Content-Type: application/json` (415 otherwise).
When the server has a token (`PLUTINO_TOKEN`), every request needs the header
`Authorization: Bearer <token>` (401 otherwise; `api.public_reads` opens GETs). A `Host` that does
not name the server, or an `Origin` of another site, is refused with 403. Secrets in answers read
`******`. Request bodies over `max_body_bytes` (1 MiB by default) are refused with 413. See
docs/security.md.
"""


#: Python's names of machines -> Go's GOARCH, which eKuiper's ``GET /`` shows as ``arch``.
_GO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i386": "386",
            "i686": "386", "x86": "386", "armv6l": "arm", "armv7l": "arm", "armv8l": "arm", "ppc64le": "ppc64le",
            "s390x": "s390x", "riscv64": "riscv64", "mips64": "mips64", "loongarch64": "loong64"}


def go_os() -> str:
    """The platform as Go's GOOS names it (eKuiper's ``os``): linux, darwin, windows, freebsd."""
    name = sys.platform
    if name.startswith("win"):
        return "windows"
    for prefix in ("linux", "freebsd", "openbsd", "netbsd"):
        if name.startswith(prefix):
            return prefix
    return name


def go_arch() -> str:
    """The machine as Go's GOARCH names it (eKuiper's ``arch``): amd64, arm64, arm, 386, ..."""
    machine = platform.machine()
    return _GO_ARCH.get(machine.lower(), machine.lower())


def create_app(host: Any = None, access: AccessSettings | None = None) -> FastAPI:
    """The API of ``host`` (a :class:`plutino.host.Host`).

    ``access``: the token, the allowed origins and hosts, the body limit; by default read from
    the host's data directory (``etc/plutino.yaml``, ``api:``) and the environment."""
    app = FastAPI(title="Plutino", version=__version__, description=DESCRIPTION, responses=ERROR_RESPONSES)
    app.state.host = host
    install_handlers(app)
    if access is None:
        access = load_access_settings(getattr(host, "data", None)) if host is not None else AccessSettings()
    app.add_middleware(WorkPools)  # slow work (queries, rule changes, installs) in bounded pools
    app.add_middleware(JsonDepthGuard)  # before a body waits for a pool: refused at once
    if access.allowed_origins:  # the pages allowed may call across origins: answer their preflights
        app.add_middleware(CORSMiddleware, allow_origins=list(access.allowed_origins), allow_methods=["*"],
                           allow_headers=["Authorization", "Content-Type"])
    data = getattr(host, "data", None)
    app.add_middleware(AccessGuard, settings=access,  # added last: the outermost layer
                       hidden_path=str(data.root) if data is not None else None)

    @app.get("/ping", tags=["server"], response_class=Response, responses={200: {"description": "The server is up"}})
    async def ping() -> Response:
        """200 with an empty body while the server is up (eKuiper's health check). Answered on the
        event loop, never queued behind requests that wait on workers in the thread pool."""
        return Response(status_code=200)

    @app.get("/", tags=["server"], response_model=ServerInfo)
    def info(host: Any = Depends(get_host)) -> dict[str, Any]:
        """Version, platform (Go's names, as eKuiper: ``linux``, ``amd64``) and uptime (eKuiper's ``GET /``)."""
        return {"version": __version__, "os": go_os(), "arch": go_arch(),
                "upTimeSeconds": int(time.time() - host.started_at), "dataDir": str(host.data.root)}

    for module in (streams, tables, rules, plugins, conf_keys, metadata, query, metrics, data_io, console):
        app.include_router(module.router)
    return app


__all__ = ["create_app", "go_arch", "go_os"]
