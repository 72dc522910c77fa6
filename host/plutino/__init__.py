"""Plutino: a stream-processing host whose extensions are native plugins loaded through cffi.

Importing the package is cheap: submodules (``plutino.native.loader``, ``plutino.registry``, ...)
are imported where they are used, ``plutino.Engine`` (the engine in a script, see
:mod:`plutino.embedded`) and ``plutino.udf`` (plugins as an Arrow UDF for Ray Data and Spark,
see :mod:`plutino.udf`) on first access.
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Engine":
        from .embedded import Engine

        return Engine
    if name == "udf":  # the package: calling it builds a UDF (plutino.udf(...), see plutino.udf)
        import importlib

        return importlib.import_module(".udf", __name__)
    raise AttributeError(f"module 'plutino' has no attribute {name!r}")


__all__ = ["Engine", "__version__", "udf"]
