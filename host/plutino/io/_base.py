"""What the in-process sinks (``log``, ``memory``, ``nop``) share: the Sink calls they have
nothing to do for.

They hold no connection to open or lose, buffer nothing to flush and keep nothing to release,
so only ``write()`` is their own; their status is always "connected".
"""

from __future__ import annotations

from plutino_contract.protocols import ConnectionStatus


class InProcessSink:
    """Base of a sink whose ``write()`` finishes its work in the call (subclasses define it)."""

    def open(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def status(self) -> ConnectionStatus:
        return "connected"

    def close(self) -> None:
        pass


__all__ = ["InProcessSink"]
