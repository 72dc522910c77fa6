"""The REST API: eKuiper's paths and bodies over a Plutino host (see docs/rest.md).

:func:`create_app` builds the FastAPI application; :mod:`.errors` is the one place where the
host's exceptions become status codes and error bodies; :mod:`.client` is a small client for
the CLI. ``create_app`` is imported on first use, so the client commands do not load FastAPI
and the engine.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module 'plutino.api' has no attribute {name!r}")
