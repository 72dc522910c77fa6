"""The REST API: eKuiper's paths and bodies over a Plutino host (see docs/rest.md).

:func:`create_app` builds the FastAPI application; :mod:`.errors` is the one place where the
host's exceptions become status codes and error bodies.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
