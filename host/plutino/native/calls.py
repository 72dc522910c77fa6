"""What every adapter of a native plugin shares when it calls into C.

A failure status becomes a :class:`~plutino.errors.PluginCallError` carrying the plugin's name,
the call, the status name and the plugin's own message; a result that breaks the contract (no
array, wrong length, wrong type) becomes one too, with status ``CONTRACT_VIOLATION``. The
release helpers free an Arrow struct the host still owns (one a plugin filled and then failed,
or one pyarrow could not import); they do nothing to a struct that was never filled or was
already released.

Kept apart from :mod:`plutino.native.adapters` (sources, sinks) and :mod:`plutino.native.functions`
so that both import it and neither imports the other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import plutino_contract as contract
from plutino.errors import PluginCallError, PluginIOError, PlutinoError
from plutino.native.hostapi import NativeContext, ffi

OK, AGAIN, EOF = contract.OK, contract.AGAIN, contract.EOF
VIOLATION = "CONTRACT_VIOLATION"


def call_failure(plugin: str, call: str, status: int, ctx: NativeContext) -> PluginCallError:
    """The error for a call that returned ``status``; PLUTINO_IO gives a PluginIOError."""
    name = contract.STATUS_NAMES.get(status, f"status {status}")
    cls = PluginIOError if status == contract.IO else PluginCallError
    return cls(plugin, call, name, ctx.message())


def contract_violation(plugin: str, call: str, what: str) -> PluginCallError:
    """The error for a call that returned OK with a result the host cannot use."""
    return PluginCallError(plugin, call, VIOLATION, f"{what} (a bug in the plugin; report it to its author)")


#: Arrow's C format strings of the types a result usually has, for messages.
_FORMATS = {"int64": "l", "double": "g", "string": "u", "large_string": "U", "bool": "b", "binary": "z",
            "int32": "i", "float": "f", "null": "n"}
#: pyarrow's names that differ from the SQL-ish names plutino.h uses.
_NAMES = {"double": "float64", "float": "float32", "halffloat": "float16", "string": "utf8",
          "large_string": "large utf8"}


def type_name(t: Any, with_format: bool = True) -> str:
    """An Arrow type as messages name it: 'float64 ("g")', with its C format when it has a short one."""
    shown = str(t)
    fmt = _FORMATS.get(shown)
    name = _NAMES.get(shown, shown)
    return f'{name} ("{fmt}")' if fmt and with_format else name


def release_array(p: Any) -> None:
    if p.release != ffi.NULL:
        p.release(p)


def release_schema(p: Any) -> None:
    if p.release != ffi.NULL:
        p.release(p)


def config_json(plugin: str, config: Mapping[str, Any] | None) -> bytes:
    """An instance's config as the JSON text its create() receives."""
    try:
        return json.dumps(dict(config or {}), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise PlutinoError(
            f"plugin '{plugin}': its config cannot be passed as JSON ({exc}); "
            "use strings, numbers, booleans, lists and objects") from None


__all__ = ["AGAIN", "EOF", "OK", "VIOLATION", "call_failure", "config_json", "contract_violation", "release_array",
           "release_schema", "type_name"]
