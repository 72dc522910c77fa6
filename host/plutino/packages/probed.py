"""Installed plugins as the control plane knows them: by their record, never loaded.

The server's own process runs no plugin code (the data plane does), yet it must know what
is installed: which source and sink names exist and which functions each library offers,
so that a stream naming a missing source, or two plugins claiming one function name, are
refused where the user asks. A :class:`ProbedPlugin` carries exactly that, from a load
check in a probe process (install, update) or from the store's record (start-up), and
registers in the registry like a loaded plugin. Making an instance of it is an error: rules
run in workers, which load the real plugin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from plutino.errors import PlutinoError


def _elsewhere(name: str) -> PlutinoError:
    return PlutinoError(f"plugin '{name}' runs in the data plane's worker processes, not in the server")


@dataclass(eq=False)
class ProbedFunction:
    """One function of a probed library: its name and shape, no code."""

    name: str
    plugin: str
    aggregate: bool = False
    min_args: int = 0
    max_args: int = -1
    volatile: bool = False

    def validate(self, arg_types: Any) -> Any:
        raise _elsewhere(self.plugin)

    def create(self, context: Any = None) -> Any:
        raise _elsewhere(self.plugin)


@dataclass(eq=False)
class ProbedPlugin:
    """An installed plugin known by its kind, name, version, file and functions."""

    kind: str
    name: str
    version: str
    path: str
    functions: dict[str, ProbedFunction] = field(default_factory=dict)

    def create(self, config: Any = None, context: Any = None) -> Any:
        raise _elsewhere(self.name)

    @classmethod
    def from_check(cls, check: dict[str, Any], path: str) -> "ProbedPlugin":
        """From a successful load check (:meth:`plutino.native.loader.PluginCheck.to_dict`)."""
        plugin = cls(check["kind"], check["name"], check["version"], path)
        for fn in check.get("functions", []):
            plugin.functions[fn["name"]] = ProbedFunction(
                fn["name"], plugin.name, bool(fn.get("aggregate")), int(fn.get("min_args", 0)),
                int(fn.get("max_args", -1)), bool(fn.get("volatile")))
        return plugin

    @classmethod
    def from_record(cls, kind: str, name: str, version: str, path: str, functions: Any) -> "ProbedPlugin":
        """From the store's record of a plugin installed earlier (and load-checked then)."""
        plugin = cls(kind, name, version, path)
        for fn in functions:
            plugin.functions[fn] = ProbedFunction(fn, name)
        return plugin


__all__ = ["ProbedFunction", "ProbedPlugin"]
