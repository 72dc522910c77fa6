"""How a route reaches the Host: ``host: Host = Depends(get_host)``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

if TYPE_CHECKING:
    from plutino.server import Host


def get_host(request: Request) -> "Host":
    host = request.app.state.host
    if host is None:  # an app made only to print its OpenAPI spec
        raise RuntimeError("this app was created without a Host; pass one to create_app(host)")
    return host


__all__ = ["get_host"]
