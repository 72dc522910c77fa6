"""The host's exceptions: one small hierarchy, each carrying a message written for the user.

Every message says what is wrong, the values involved, and the fix, on one line, so it reads
the same in a log, a REST error body and a terminal. The structured fields beside the
message are for programs (the REST layer, the plugin manager's records).
"""

from __future__ import annotations

from typing import Any


class PlutinoError(Exception):
    """Base of every error the host raises on purpose. ``str(e)`` is the user's message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class PluginRefused(PlutinoError):
    """A plugin file was refused by inspection (before ``dlopen``) or by loading (after it).

    ``field`` names what disagreed (``"abi_major"``, ``"e_machine"``, ``"entry"``, ...),
    ``plugin_value`` and ``host_value`` the two sides (``None`` when a side has no value),
    ``fix`` what the user should do.
    """

    def __init__(
        self,
        path: str,
        field: str,
        detail: str,
        fix: str,
        plugin_value: Any = None,
        host_value: Any = None,
    ) -> None:
        self.path = path
        self.field = field
        self.detail = detail
        self.plugin_value = plugin_value
        self.host_value = host_value
        self.fix = fix
        super().__init__(f"plugin {path} refused: {detail}; {fix}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.field, self.detail, self.fix, self.plugin_value, self.host_value))

    def to_dict(self) -> dict[str, Any]:
        """The refusal as JSON-ready data (CLI ``--json``, REST bodies)."""
        return {
            "path": self.path,
            "field": self.field,
            "plugin_value": _jsonable(self.plugin_value),
            "host_value": _jsonable(self.host_value),
            "fix": self.fix,
            "message": self.message,
        }


class PluginCallError(PlutinoError):
    """A call into a loaded plugin failed: it returned a failure status, or broke the contract.

    ``status`` is the status name (``"PLUTINO_INVALID"``; ``"CONTRACT_VIOLATION"`` when the
    plugin returned OK but its result was unusable), ``plugin_message`` the plugin's own words.
    """

    def __init__(self, plugin: str, call: str, status: str, plugin_message: str) -> None:
        self.plugin = plugin
        self.call = call
        self.status = status
        self.plugin_message = plugin_message
        super().__init__(f"plugin '{plugin}': {call} failed ({status}): {plugin_message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.plugin, self.call, self.status, self.plugin_message))

    @property
    def retryable(self) -> bool:
        """True when the plugin said a retry may succeed (PLUTINO_IO)."""
        return self.status == "PLUTINO_IO"


class PluginIOError(PluginCallError, OSError):
    """PLUTINO_IO from a sink or source: a retry may succeed.

    Also an ``OSError``, because the Sink Protocol says "raise IOError when a retry may
    succeed": the engine's resend logic catches native and Python sinks the same way."""


class PluginArgumentError(PluginCallError, ValueError):
    """A function refused its argument types or count (validate returned PLUTINO_INVALID).

    Also a ``ValueError``, because the Function Protocol's ``validate`` raises ValueError."""


class RegistryError(PlutinoError):
    """A plugin or function could not be registered (name taken) or was not found."""


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


__all__ = [
    "PlutinoError",
    "PluginArgumentError",
    "PluginCallError",
    "PluginIOError",
    "PluginRefused",
    "RegistryError",
]
