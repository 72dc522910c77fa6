"""Every built-in source and sink, and how they enter a registry.

Built-ins: sources ``mqtt`` (the default TYPE), ``memory``, ``file``, ``httppush``,
``httppull``, ``simulator``; sinks ``log``, ``file``, ``memory``, ``mqtt``, ``rest``, ``nop``. Every sink
gets eKuiper's common properties (:mod:`.sink_props`).

Names: a built-in owns its name until a plugin of the same kind and name is *installed*; the
installed one then takes the name (that is how the bundled native ``file`` sink example is
used instead of the built-in one: install it). :func:`register_builtins` therefore skips a
name that is already registered, and :func:`is_builtin` / :func:`builtin_plugin` let the plugin
manager replace a built-in on install and put it back on delete.
"""

from __future__ import annotations

import logging
from typing import Any

from .sink_props import with_sink_props

_log = logging.getLogger("plutino.io")


def builtin_io_plugins(memory_broker: Any = None) -> list[Any]:
    """New instances of every built-in source and sink (sinks ready for the common properties).

    ``memory_broker``: the broker of the memory source and sink (default: the process's)."""
    from .file import FileSinkPlugin, FileSourcePlugin
    from .httppull import HttpPullSourcePlugin
    from .httppush import HttpPushSourcePlugin
    from .log import LogSinkPlugin
    from .memory import MemorySinkPlugin, MemorySourcePlugin
    from .mqtt import MqttSinkPlugin, MqttSourcePlugin
    from .nop import NopSinkPlugin
    from .rest import RestSinkPlugin
    from .simulator import SimulatorSourcePlugin

    sources: list[Any] = [
        MqttSourcePlugin(),
        MemorySourcePlugin(memory_broker),
        FileSourcePlugin(),
        HttpPushSourcePlugin(),
        HttpPullSourcePlugin(),
        SimulatorSourcePlugin(),
    ]
    sinks: list[Any] = [
        LogSinkPlugin(),
        FileSinkPlugin(),
        MemorySinkPlugin(memory_broker),
        MqttSinkPlugin(),
        RestSinkPlugin(),
        NopSinkPlugin(),
    ]
    plugins = sources + [with_sink_props(s) for s in sinks]
    for plugin in plugins:
        plugin.builtin = True  # instance attribute: memory and log do not declare it themselves
    return plugins


def register_builtins(registry: Any, memory_broker: Any = None) -> list[str]:
    """Register every built-in whose kind and name are free; return the ``kind/name`` of those
    skipped because a plugin already holds the name (an installed plugin wins)."""
    skipped = []
    for plugin in builtin_io_plugins(memory_broker):
        existing = registry.find(plugin.kind, plugin.name)
        if existing is not None:
            if not is_builtin(existing):
                _log.info("built-in %s %r is replaced by the installed plugin of that name", plugin.kind, plugin.name)
                skipped.append(f"{plugin.kind}/{plugin.name}")
            continue
        registry.register(plugin)
    return skipped


def is_builtin(plugin: Any) -> bool:
    """True for a built-in I/O plugin (which an installed plugin of its name may replace)."""
    return getattr(plugin, "builtin", False) is True


def builtin_plugin(kind: str, name: str, memory_broker: Any = None) -> Any | None:
    """A new instance of the built-in ``kind``/``name``, or None: to put a built-in back after
    the installed plugin that replaced it is deleted."""
    return next((p for p in builtin_io_plugins(memory_broker) if p.kind == kind and p.name == name), None)


__all__ = ["builtin_io_plugins", "builtin_plugin", "is_builtin", "register_builtins"]
