"""Built-in sources and sinks, written in Python against the contract's Protocols.

They register with the registry like any plugin (``registry.register(plugin)``), so the engine
treats them exactly as it treats native ones. :func:`builtin_plugins` lists them.
"""

from __future__ import annotations

from typing import Any


def builtin_plugins() -> list[Any]:
    """The built-in I/O plugins: the ``memory`` source and sink, the ``log`` sink."""
    from .log import LogSinkPlugin
    from .memory import MemorySinkPlugin, MemorySourcePlugin

    return [MemorySourcePlugin(), MemorySinkPlugin(), LogSinkPlugin()]


__all__ = ["builtin_plugins"]
