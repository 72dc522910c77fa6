"""Where a rule runs, and the record of the crashes its plugins caused.

- ``isolation: shared`` rules go to the pool worker with the fewest rules, except that rules
  joined by ``memory`` topics go where the first of them went: a memory topic lives inside
  one process, so a pipeline of rules stays together.
- ``isolation: dedicated`` rules get a worker of their own, and so does a rule whose plugin
  has crashed its worker once already: the next crash takes nobody else down.
- A rule whose plugin crashed its worker ``quarantine_crashes`` times within
  ``quarantine_window_s`` is quarantined: stopped, and not started again (not even when the
  host restarts) until a user starts it.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Iterable

from plutino.engine.rules import RuleDef


def memory_topics(rule: RuleDef, stream: Any) -> set[str]:
    """The memory topics a rule reads (its stream's DATASOURCE) or writes (its actions)."""
    topics = set()
    if stream is not None and stream.type == "memory" and stream.datasource:
        topics.add(stream.datasource)
    for action in rule.actions:
        if action.sink == "memory":
            topic = action.props.get("topic")
            if isinstance(topic, str) and topic:
                topics.add(topic)
    return topics


class CrashRecord:
    """Crashes by rule, within a sliding window."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._times: dict[str, deque[float]] = {}
        self.last: dict[str, str] = {}

    def add(self, rule_id: str, reason: str, now: float | None = None) -> int:
        """Count a crash; return how many fell within the window, this one included."""
        now = time.monotonic() if now is None else now
        times = self._times.setdefault(rule_id, deque())
        times.append(now)
        while times and now - times[0] > self.window_s:
            times.popleft()
        self.last[rule_id] = reason
        return len(times)

    def recent(self, rule_id: str) -> int:
        now = time.monotonic()
        return sum(1 for t in self._times.get(rule_id, ()) if now - t <= self.window_s)

    def crashed_before(self, rule_id: str) -> bool:
        return rule_id in self.last

    def forget(self, rule_id: str) -> None:
        self._times.pop(rule_id, None)
        self.last.pop(rule_id, None)


def least_loaded(workers: Iterable[Any]) -> Any | None:
    return min(workers, key=lambda w: len(w.rules), default=None)


__all__ = ["CrashRecord", "least_loaded", "memory_topics"]
