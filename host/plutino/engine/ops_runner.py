"""The operators of a running rule: the pipeline run on each item, its output handed to the sinks.

An item is ``("data", rows, arrival_ms, deliveries)`` from the source, ``("tick", now_ms)`` from
the clock (processing-time windows), or the end of a bounded stream. A rule with a window has
an operators' mailbox (node 0 of :mod:`.handoff`), drained on the scheduler. A rule without
one has no clock ticks to take, so its operators run right in the source reader's turn
(:attr:`OpsRunner.inline`).

Each output batch goes to every sink: a sink that is caught up and quick
(:meth:`.sink_writer.SinkWriter.can_inline`) is written right here; any other batch goes
through the sink's mailbox, in order. A hand-off costs more than such a write, and lets the
source run ahead of the cache (bench/pipeline.py, docs/performance.md). :attr:`OpsRunner.writing`
says which sink is being written here, so a stop that finds this turn stuck leaves it open.

Acknowledgements (:mod:`.delivery`): an item's deliveries are held by the operators until the
item is done; each output batch holds them again on its way through each sink. A window holds
them as long as it holds rows that arrived with them: all of them once it is empty, and, with
processing time, those older than its oldest row.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from .delivery import NONE, Deliveries, Delivery, hold_all, release_all
from .handoff import END, Handoffs, rows_of
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
        event_time: bool = False,
    ) -> None:
        self.rule_id = rule_id
        self.pipeline = pipeline
        self.writers = writers
        self.handoffs = handoffs
        self.stop = stop
        self.metrics = metrics  # where an unexpected operator error is counted (the source's)
        self.inline = inline  # in the source reader's turn, not in a mailbox of its own
        self.writing = -1  # the sink being written here right now, or -1
        self._event_time = event_time
        self._held: list[tuple[int, Delivery]] = []  # (arrival ms, delivery) of rows in the window
        self._tick_queued = False
        self.box = None if inline else handoffs.bind(0, self.handle)

    # -- feeding -----------------------------------------------------------------------------
    def submit(self, item: Any) -> bool:
        """Hand ``item`` to the operators: queue it, or run them here when they are inline.
        False when the rule stopped meanwhile."""
        if not self.inline:
            return self.handoffs.put(0, item)
        self.operate(item)
        return not self.stop.is_set()

    def refused(self, item: Any) -> None:
        """The feed had taken ``item`` in for this rule (its source counted the rows) when the
        rule stopped reading: its rows are counted undelivered. Its deliveries are the feed's
        (kept for a replay, or released for the other rules of a shared feed)."""
        self.handoffs.lost(0, rows_of(item))

    def blocked(self) -> Any:
        """The mailbox that is full in front of the source (it should wait), or None."""
        handoffs = self.handoffs
        if not self.inline:
            return handoffs.box(0) if handoffs.full(0) else None
        for w in self.writers:
            if handoffs.full(w.node):
                return handoffs.box(w.node)
        return None

    def tick(self, now_ms: int) -> None:
        """The clock's tick (processing-time windows), queued like the data (one at a time)."""
        if not self._tick_queued:
            self._tick_queued = True
            self.handoffs.put(0, ("tick", now_ms))

    # -- the operators' mailbox ----------------------------------------------------------------
    def handle(self, item: Any) -> None:
        """One item of the operators' mailbox; waits (paused) while a sink has no room."""
        if item is not END:
            for w in self.writers:
                if self.handoffs.full(w.node):
                    box = self.box
                    assert box is not None
                    box.pause()
                    box.items.appendleft(item)
                    self.handoffs.box(w.node).wake_when_room(box.resume)
                    return
        if item[0] == "tick":
            self._tick_queued = False
        self.operate(item)
        self.handoffs.finished(0)

    def operate(self, item: Any) -> bool:
        """Run the operators on one item and hand their output to the sinks; True when the
        operators are done (the end of the stream, or the rule stopped)."""
        pipeline = self.pipeline
        kind = item[0]
        deliveries: Deliveries = item[3] if kind == "data" else NONE
        try:
            if kind == "data":
                out = pipeline.on_batch(item[1], item[2])
            elif kind == "tick":
                out = pipeline.on_tick(item[1])
            else:
                out = pipeline.on_end()
        except Exception as exc:  # the stages catch their own errors; this is a bug guard
            _log.exception("rule %s: operator error", self.rule_id)
            self.metrics.error(exc)
            out = []
        carried = deliveries if pipeline.window is None else self._out_of_window(deliveries, item)
        handoffs = self.handoffs
        for batch in out:
            if batch.num_rows == 0:
                continue
            for w in self.writers:
                if w.can_inline():
                    self.writing = w.index  # caught up and quick: written here (see above)
                    w.deliver(batch, carried)
                    self.writing = -1
                else:
                    hold_all(carried)
                    handoffs.put(w.node, (batch, carried))  # once stopped, each put just counts the rows
        if self.stop.is_set():
            return True
        release_all(carried)
        if kind == "end":
            for w in self.writers:
                handoffs.put(w.node, END)
        return kind == "end"

    def let_go(self) -> list[Delivery]:
        """After the stop: the deliveries the window still held (never released by this rule)."""
        held = [d for _, d in self._held]
        self._held.clear()
        return held

    def _out_of_window(self, deliveries: Deliveries, item: Any) -> Deliveries:
        """The deliveries whose rows the window no longer holds (see the module's doc)."""
        held = self._held
        if deliveries:
            arrival = item[2]
            held.extend((arrival, d) for d in deliveries)
        if not held:
            return NONE
        window = self.pipeline.window
        assert window is not None
        rows = window.assigner.rows
        if len(rows) == 0 or item[0] == "end":
            out = tuple(d for _, d in held)
            held.clear()
            return out
        if self._event_time:
            return NONE
        oldest = rows.first_ts()
        n = 0
        while n < len(held) and held[n][0] < oldest:
            n += 1
        if not n:
            return NONE
        out = tuple(d for _, d in held[:n])
        del held[:n]
        return out


__all__ = ["OpsRunner"]
