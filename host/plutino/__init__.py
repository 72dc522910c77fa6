"""Plutino: a stream-processing host whose extensions are native plugins loaded through cffi.

Importing the package is cheap: submodules (``plutino.loader``, ``plutino.registry``, ...)
are imported where they are used.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
