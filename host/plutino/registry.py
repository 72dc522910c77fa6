"""The registry: which plugin answers to which name.

Sources and sinks are found by kind and name (``TYPE="random"``, an action ``{"file": ...}``);
SQL functions by function name, case-insensitively, mapped to the function and the library
that provides it. Native plugins (:class:`~plutino.native.adapters.NativePlugin`) and Python objects
satisfying the contract's Protocols register the same way.

Names are never silently shadowed: a plugin whose name is taken, or whose function collides
with a built-in function or another plugin's function, is refused whole with a message
naming both owners.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from plutino_contract.protocols import Function, FunctionLibrary, SinkPlugin, SourcePlugin

from .errors import RegistryError
from .names import FUNCTION_NAME, PLUGIN_NAME

_KINDS = ("source", "sink", "function")
_PROTOCOLS = {"source": SourcePlugin, "sink": SinkPlugin, "function": FunctionLibrary}
_FUNCTION_MEMBERS = ("name", "aggregate", "min_args", "max_args", "validate", "create")


class FunctionEntry(NamedTuple):
    """A registered SQL function and the plugin that provides it."""

    function: Any
    provider: Any


def describe_owner(plugin: Any) -> str:
    """'plugin 'echo' (/path/echo.so)' or 'plugin 'echo' (Python mymod.Echo)'."""
    name = getattr(plugin, "name", "?")
    path = getattr(plugin, "path", None)
    if path:
        return f"plugin '{name}' ({path})"
    cls = type(plugin)
    return f"plugin '{name}' (Python {cls.__module__}.{cls.__qualname__})"


def plugin_functions(plugin: Any) -> list[Any]:
    """A library's functions, whether it lists them (Protocol) or maps names to them (NativePlugin)."""
    functions = getattr(plugin, "functions", ())
    if isinstance(functions, Mapping):
        return list(functions.values())
    return list(functions)


class Registry:
    """kind + name -> plugin; function name -> (function, provider). Thread-safe."""

    def __init__(self, builtin_functions: Iterable[str] = ()) -> None:
        self._builtins = {name.lower(): name for name in builtin_functions}
        self._plugins: dict[tuple[str, str], Any] = {}
        self._functions: dict[str, FunctionEntry] = {}
        self._lock = threading.RLock()

    def register(self, plugin: Any) -> None:
        """Register a plugin and, for a function library, each of its functions; all or nothing.

        Registering the very same object again does nothing (loading is idempotent too)."""
        kind = getattr(plugin, "kind", None)
        owner = describe_owner(plugin)
        if kind not in _KINDS:
            raise RegistryError(
                f"cannot register {owner}: its kind is {kind!r}, expected 'source', 'sink' or 'function'; "
                "set the plugin's kind attribute")
        self._check_shape(plugin, kind, owner)
        with self._lock:
            existing = self._plugins.get((kind, plugin.name))
            if existing is plugin:
                return
            if existing is not None:
                raise RegistryError(
                    f"cannot register {owner}: a {kind} plugin named '{plugin.name}' is already registered, "
                    f"{describe_owner(existing)}; unregister it first or rename the new plugin")
            functions = self._check_functions(plugin, owner) if kind == "function" else []
            self._plugins[(kind, plugin.name)] = plugin
            for fn in functions:
                self._functions[fn.name.lower()] = FunctionEntry(fn, plugin)

    def unregister(self, kind: str, name: str) -> Any:
        """Remove a plugin and its functions; return it."""
        with self._lock:
            plugin = self._plugins.pop((kind, name), None)
            if plugin is None:
                raise RegistryError(f"no {kind} plugin named '{name}' is registered; {self._known(kind)}")
            for key in [k for k, entry in self._functions.items() if entry.provider is plugin]:
                del self._functions[key]
            return plugin

    def get(self, kind: str, name: str) -> Any:
        """The plugin of this kind and name, or RegistryError naming the ones there are."""
        plugin = self.find(kind, name)
        if plugin is None:
            raise RegistryError(f"no {kind} plugin named '{name}' is registered; {self._known(kind)}")
        return plugin

    def find(self, kind: str, name: str) -> Any | None:
        with self._lock:
            return self._plugins.get((kind, name))

    def function(self, name: str) -> FunctionEntry:
        """The function called ``name`` in SQL (any case) and its provider, or RegistryError."""
        entry = self.find_function(name)
        if entry is None:
            raise RegistryError(f"no plugin provides a function named '{name}'; install the plugin that does")
        return entry

    def find_function(self, name: str) -> FunctionEntry | None:
        with self._lock:
            return self._functions.get(name.lower())

    def plugins(self, kind: str | None = None) -> list[Any]:
        with self._lock:
            return [p for (k, _), p in sorted(self._plugins.items()) if kind is None or k == kind]

    def function_names(self) -> list[str]:
        with self._lock:
            return sorted(entry.function.name for entry in self._functions.values())

    def _known(self, kind: str) -> str:
        names = sorted(n for (k, n) in self._plugins if k == kind)
        return f"registered {kind}s: {', '.join(names)}" if names else f"no {kind} plugins are registered"

    @staticmethod
    def _check_shape(plugin: Any, kind: str, owner: str) -> None:
        protocol = _PROTOCOLS[kind]
        needed = ("name", "version", "kind", "functions" if kind == "function" else "create")
        missing = [m for m in needed if not hasattr(plugin, m)]
        if missing or not isinstance(plugin, protocol):
            raise RegistryError(
                f"cannot register {owner}: it lacks {', '.join(missing) or 'a Protocol member'} of a {kind} "
                f"plugin; implement plutino_contract.protocols.{protocol.__name__}")
        name = getattr(plugin, "name", None)
        if not PLUGIN_NAME.ok(name):
            raise RegistryError(
                f"cannot register {owner}: its name {name!r} is not a valid plugin name ({PLUGIN_NAME.rule});"
                " rename it")

    def _check_functions(self, plugin: Any, owner: str) -> list[Any]:
        functions = plugin_functions(plugin)
        if not functions:
            raise RegistryError(f"cannot register {owner}: it is a function library with no functions; add some")
        mine: dict[str, Any] = {}
        for fn in functions:
            name = getattr(fn, "name", None)
            missing = [m for m in _FUNCTION_MEMBERS if not hasattr(fn, m)]
            if missing or not isinstance(fn, Function):
                raise RegistryError(
                    f"cannot register {owner}: its function {name!r} lacks {', '.join(missing)}; "
                    "implement plutino_contract.protocols.Function")
            if not FUNCTION_NAME.ok(name):
                raise RegistryError(
                    f"cannot register {owner}: {name!r} is not a SQL function name ({FUNCTION_NAME.rule}); rename it")
            key = str(name).lower()
            if key in mine:
                raise RegistryError(
                    f"cannot register {owner}: it has two functions named '{mine[key].name}' and '{name}' "
                    "(SQL names are case-insensitive); rename one")
            if key in self._builtins:
                raise RegistryError(
                    f"function '{name}' of {owner} collides with the built-in function '{self._builtins[key]}'; "
                    "rename the plugin's function")
            other = self._functions.get(key)
            if other is not None:
                raise RegistryError(
                    f"function '{name}' of {owner} collides with function '{other.function.name}' of "
                    f"{describe_owner(other.provider)} (SQL names are case-insensitive); rename one of them, "
                    f"or unregister plugin '{other.provider.name}' first")
            mine[key] = fn
        return functions


__all__ = ["FunctionEntry", "Registry", "describe_owner", "plugin_functions"]
