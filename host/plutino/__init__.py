"""Plutino: a stream-processing host whose extensions are native plugins loaded through cffi.

Importing the package is cheap: submodules (``plutino.native.loader``, ``plutino.registry``, ...)
are imported where they are used, and ``plutino.Engine`` (the engine in a script, see
:mod:`plutino.embedded`) on first access.
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Engine":
        from .embedded import Engine

        return Engine
    raise AttributeError(f"module 'plutino' has no attribute {name!r}")


__all__ = ["Engine", "__version__"]
