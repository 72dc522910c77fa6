"""Plugin functions as the engine sees them: looked up by name, used once per rule.

The compiler finds plugin functions through a :class:`FunctionLookup` (the registry, through
:class:`RegistryFunctions`); each use of one in a rule becomes a :class:`FunctionUse`, whose
instance lives from the rule's start to its stop and whose calls are counted for the status.
Native and Python functions are used the same way: through the contract's Protocols.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Protocol

import pyarrow as pa

from plutino.errors import PluginCallError
from plutino_contract.protocols import Context, Function, FunctionInstance


class FunctionLookup(Protocol):
    """Where plugin functions come from (the registry, through an adapter)."""

    def lookup(self, name: str) -> "tuple[Function, str] | None":
        """The function called ``name`` (case-insensitive) and its plugin's name, or None."""

    def names(self) -> Iterable[str]:
        """Every plugin function name, for "did you mean" hints."""


class NoPlugins:
    """A lookup with no plugin functions (built-ins only)."""

    def lookup(self, name: str) -> "tuple[Function, str] | None":
        return None

    def names(self) -> Iterable[str]:
        return ()


class RegistryFunctions:
    """The registry's functions as the compiler looks them up."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def lookup(self, name: str) -> Any:
        entry = self.registry.find_function(name)
        return None if entry is None else (entry.function, entry.provider.name)

    def names(self) -> Iterable[str]:
        return self.registry.function_names()


@dataclass
class FunctionUse:
    """One use of a plugin function in a rule: its instance lives from rule start to stop.

    ``calls`` counts calls into the plugin (one per batch for a scalar function, one per
    window for an aggregate), shown in the rule status. A result that is not an array of the
    right length (one row per input row, or per group) and of the type validate() gave is a
    failed call, whatever kind of plugin returned it (the native adapter checks this too)."""

    function: Function
    plugin: str
    name: str
    index: int
    calls: int = 0
    errors: int = 0
    instance: FunctionInstance | None = None
    result_type: pa.DataType | None = None  # what validate() promised, when it could tell

    def open(self, rule_id: str, op_id: str) -> None:
        self.calls = 0
        self.errors = 0
        self.instance = self.function.create(Context(plugin_name=self.plugin, rule_id=rule_id, op_id=op_id))

    def close(self) -> None:
        instance, self.instance = self.instance, None
        if instance is not None:
            try:
                instance.close()
            except Exception:  # close() must not raise; a broken plugin must not stop the stop
                pass

    def _ready(self) -> FunctionInstance:
        if self.instance is None:
            raise RuntimeError(f"function '{self.name}' used before the rule started")
        return self.instance

    def call(self, args: list[pa.Array], length: int) -> pa.Array:
        # once per batch: the checks that pass cost a few attribute reads, nothing more
        self.calls += 1
        try:
            instance = self.instance
            result = (instance if instance is not None else self._ready()).call(args, length)
            expected = self.result_type
            if isinstance(result, pa.Array) and len(result) == length and (expected is None or result.type == expected):
                return result
            return self._checked(result, length, "call")
        except Exception:
            self.errors += 1
            raise

    def aggregate(self, args: list[pa.Array], length: int, group_ids: pa.Array | None, ngroups: int) -> pa.Array:
        self.calls += 1
        try:
            return self._checked(self._ready().aggregate(args, length, group_ids, ngroups), ngroups, "aggregate")
        except Exception:
            self.errors += 1
            raise

    def _checked(self, result: Any, rows: int, call: str) -> pa.Array:
        what = f"function '{self.name}' {call}"
        if isinstance(result, pa.ChunkedArray):
            result = result.combine_chunks()
        if not isinstance(result, pa.Array):
            raise PluginCallError(self.plugin, what, "CONTRACT_VIOLATION", f"{call}() returned"
                                  f" {type(result).__name__}, not a pyarrow Array (a bug in the plugin)")
        if len(result) != rows:
            per = "one per input row" if call == "call" else "one per group"
            raise PluginCallError(self.plugin, what, "CONTRACT_VIOLATION", f"{call}() returned"
                                  f" {len(result)} rows, expected {rows} ({per}) (a bug in the plugin)")
        if self.result_type is not None and result.type != self.result_type:
            raise PluginCallError(self.plugin, what, "CONTRACT_VIOLATION",
                                  f"{call}() returned type {result.type}, but validate() promised {self.result_type}"
                                  " (a bug in the plugin)")
        return result


__all__ = ["FunctionLookup", "FunctionUse", "NoPlugins", "RegistryFunctions"]
