"""The threads of a running rule, each with a record of the plugin instances it calls.

A stop joins every thread for at most ``JOIN_S``; one still alive after that is stuck inside a
plugin call that ignored its timeout. The plugin contract never has the host call one instance
from two threads, so the instances such a thread may be inside are left open. Which ones those
are is recorded on the thread, not guessed: :class:`RuleThread` knows its role, the sink it
writes (a sink's thread), and whether it runs the operators (and so the rule's plugin
functions, and whichever sink the operators are writing to inline right now).
"""

from __future__ import annotations

import threading
from typing import Callable, Protocol

JOIN_S = 10.0  # how long a stop waits for a thread stuck in a plugin call


class Operators(Protocol):
    """What a thread that runs the operators tells about them (:class:`.ops_runner.OpsRunner`)."""

    writing: int  # the sink the operators are writing to themselves right now, or -1


class RuleThread:
    """One thread of a rule: ``role`` is "source", "ops" or "sink<i>"."""

    def __init__(
        self,
        rule_id: str,
        role: str,
        target: Callable[[], None],
        *,
        sink: int | None = None,
        operators: Operators | None = None,
    ) -> None:
        self.role = role
        self.sink = sink  # the sink whose instance this thread writes (a sink's thread)
        self.operators = operators  # the operators, when this thread runs them
        self.thread = threading.Thread(target=target, name=f"plutino-rule-{rule_id}-{role}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        """Wait for the thread to end, unless it is the calling thread."""
        if self.thread is not threading.current_thread():
            self.thread.join(timeout=timeout)

    def stuck(self) -> bool:
        """Still alive after the stop joined it: inside a plugin call (not the calling thread)."""
        return self.thread.is_alive() and self.thread is not threading.current_thread()

    def sinks_in_use(self) -> set[int]:
        """The sinks whose instances this thread may be calling into."""
        used = {self.sink} if self.sink is not None else set()
        if self.operators is not None and self.operators.writing >= 0:
            used.add(self.operators.writing)
        return used

    @property
    def runs_operators(self) -> bool:
        """This thread calls the rule's plugin functions."""
        return self.operators is not None


__all__ = ["JOIN_S", "Operators", "RuleThread"]
