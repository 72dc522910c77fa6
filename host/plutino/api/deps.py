"""How a route reaches the host (:class:`plutino.host.Host`, which the API layer never imports:
it is handed over by ``create_app(host)``): ``host = Depends(get_host)``."""

from __future__ import annotations

from typing import Any

from fastapi import Request


def get_host(request: Request) -> Any:
    host = request.app.state.host
    if host is None:  # an app made only to print its OpenAPI spec
        raise RuntimeError("this app was created without a Host; pass one to create_app(host)")
    return host


__all__ = ["get_host"]
