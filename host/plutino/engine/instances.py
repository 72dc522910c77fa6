"""How a running rule calls its plugin instances outside the data path: creating them,
reading their connection status, closing them, and reporting a failed call.

A plugin's failure never stops the rule: a refused configuration is a :class:`RuleError` when
the rule starts, a failed call later is counted in the node's metrics and logged, and an error
while closing is logged and ignored.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Mapping

from plutino_contract.protocols import Context

from .errors import RuleError
from .metrics import NodeMetrics

_log = logging.getLogger("plutino.engine")
STATUS_EVERY_S = 0.1


def create(plugin: Any, config: Mapping[str, Any], ctx: Context, what: str) -> Any:
    """``plugin.create(config, ctx)``; a refusal as a RuleError naming ``what`` and the rule."""
    try:
        return plugin.create(dict(config), ctx)
    except Exception as exc:
        raise RuleError(f"rule '{ctx.rule_id}': {what} refused its configuration: {exc}") from None


def status_of(instance: Any) -> str:
    """The instance's connection status; "disconnected" when asking fails."""
    try:
        return str(instance.status())
    except Exception:
        return "disconnected"


class StatusPoll:
    """An instance's connection status, asked at most every ``STATUS_EVERY_S`` on the data path:
    asking is a call into the plugin, which per batch costs more than the batch's bookkeeping
    (bench/pipeline.py at 1K rows), while the status changes on a human time scale."""

    __slots__ = ("instance", "value", "_next")

    def __init__(self, instance: Any) -> None:
        self.instance = instance
        self.value = "connecting"
        self._next = 0.0

    def __call__(self) -> str:
        now = time.monotonic()
        if now >= self._next:
            self.value = status_of(self.instance)
            self._next = now + STATUS_EVERY_S
        return self.value


def quietly(fn: Callable[[], Any]) -> None:
    """Call ``fn`` (a flush or a close), logging and ignoring its error."""
    try:
        fn()
    except Exception as exc:
        _log.warning("ignored error while closing: %s", exc)


def failed(rule_id: str, m: NodeMetrics, exc: BaseException, call: str) -> None:
    """A plugin call of node ``m`` failed: counted in its metrics, and logged."""
    m.error(exc)
    _log.warning("rule %s: %s %s failed: %s", rule_id, m.name, call, exc)


__all__ = ["StatusPoll", "create", "failed", "quietly", "status_of"]
