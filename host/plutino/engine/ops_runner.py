"""The operators of a running rule: the pipeline run on each item, its output handed to the sinks.

An item is ``("data", rows, arrival_ms)`` from the source, ``("tick", now_ms)`` from the clock
(processing-time windows), or the end of a bounded stream. A rule with a window has an
operators' thread, fed through the operators' queue. A rule without one has no clock ticks to
take, so its operators run on the source thread (:attr:`OpsRunner.inline`), which waits for
them.

Each output batch goes to every sink: a sink that is caught up and quick
(:meth:`.sink_writer.SinkWriter.can_inline`) is written right here; any other batch goes
through the sink's queue and thread, in order. A hand-off between threads costs several context
switches per batch on a busy core, more than such a write, and lets the source run ahead of the
cache (bench/pipeline.py, docs/performance.md). :attr:`OpsRunner.writing` says which sink is
being written here, so a stop that finds this thread stuck leaves that sink open.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from .handoff import END, Handoffs
from .metrics import NodeMetrics
from .pipeline import Pipeline
from .sink_writer import SinkWriter

_log = logging.getLogger("plutino.engine")


class OpsRunner:
    """Runs ``pipeline`` for rule ``rule_id`` and routes its output to ``writers``."""

    def __init__(
        self,
        rule_id: str,
        pipeline: Pipeline,
        writers: list[SinkWriter],
        handoffs: Handoffs,
        stop: threading.Event,
        metrics: NodeMetrics,
        inline: bool,
    ) -> None:
        self.rule_id = rule_id
        self.pipeline = pipeline
        self.writers = writers
        self.handoffs = handoffs
        self.stop = stop
        self.metrics = metrics  # where an unexpected operator error is counted (the source's)
        self.inline = inline  # on the source thread, not on a thread of their own
        self.writing = -1  # the sink being written here right now, or -1

    def submit(self, item: Any) -> bool:
        """Hand ``item`` to the operators: queue it, or run them here when they are inline.
        False when the rule stopped meanwhile."""
        if not self.inline:
            return self.handoffs.put(0, item)
        self.operate(item)
        return not self.stop.is_set()

    def tick(self, now_ms: int) -> None:
        """The clock's tick (processing-time windows), queued like the data."""
        self.handoffs.put(0, ("tick", now_ms))

    def run(self) -> None:
        """The operators' thread (a rule with a window)."""
        while True:
            item = self.handoffs.get(0)
            if item is None or self.operate(item):
                return

    def operate(self, item: Any) -> bool:
        """Run the operators on one item (queued, or inline on the source thread, which waits
        for them: no accounting for wait_idle) and hand their output to the sinks; True when
        the operators are done (the end of the stream, or the rule stopped)."""
        pipeline = self.pipeline
        handoffs = self.handoffs
        kind = item[0]
        try:
            if kind == "data":
                out = pipeline.on_batch(item[1], item[2])
            elif kind == "tick":
                out = pipeline.on_tick(item[1])
            else:
                out = pipeline.on_end()
        except Exception as exc:  # the stages catch their own errors; this is a bug guard
            _log.exception("rule %s: operator thread error", self.rule_id)
            self.metrics.error(exc)
            out = []
        for batch in out:
            if batch.num_rows == 0:
                continue
            for w in self.writers:
                if w.can_inline():
                    self.writing = w.index  # caught up and quick: written here (see above)
                    w.deliver(batch)
                    self.writing = -1
                else:
                    handoffs.put(w.node, batch)  # once stopped, each put just counts the rows left behind
        if self.stop.is_set():
            return True
        if kind == "end":
            for w in self.writers:
                handoffs.put(w.node, END)
        if not self.inline:
            handoffs.finished(0)
        return kind == "end"


__all__ = ["OpsRunner"]
