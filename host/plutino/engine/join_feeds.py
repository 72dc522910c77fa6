"""The inputs of a JOIN rule besides its FROM stream: one source feed each, started and
stopped with the rule.

- A **table**'s feed fills the rule's :class:`~.tables.TableState` (its batches never reach
  the operators; their acknowledgements are given at once: a table keeps state, not events).
  Its end (a bounded source such as a file read to the end) leaves the rows in place.
- Another **stream**'s feed hands its batches to the rule's operators, like the FROM stream's,
  with their columns qualified and their :data:`~.join_plan.SIDE`, so that the window holds
  the rows of every joined stream; only the FROM stream's end ends the rule.

The FROM stream's batches pass :meth:`JoinFeeds.wrap` to get their qualified names too.
Each input has a source node in the rule's status (``source_<name>_0_...``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import pyarrow as pa

from plutino_contract.protocols import Context

from .decode import make_decoder
from .delivery import release_all
from .handoff import END
from .instances import create, quietly
from .join_plan import SIDE, JoinInput, JoinPlan
from .join_stage import JoinStage, qualify
from .metrics import NodeMetrics
from .source_reader import Inlet, SourceFeed
from .tables import TableState


@dataclass
class JoinSource:
    """A joined input with the source plugin that reads it and the config to create it with."""

    input: JoinInput
    plugin: Any
    config: Mapping[str, Any]


class _Tagged:
    """A stream's batches on their way to the operators: qualified, with their side."""

    def __init__(self, ops: Any, name: str, side: int | None, ends: bool) -> None:
        self.ops = ops
        self.name = name
        self.side = side
        self.ends = ends

    def submit(self, item: Any) -> bool:
        if item is END:
            return self.ops.submit(item) if self.ends else True
        rows = qualify(item[1], self.name)
        if self.side is not None:
            rows = rows.append_column(SIDE, pa.repeat(pa.scalar(self.side, pa.int8()), rows.num_rows))
        return self.ops.submit(("data", rows, item[2], item[3]))

    def blocked(self) -> Any:
        return self.ops.blocked()


class _TableFill:
    """A table's batches, into its state."""

    def __init__(self, state: TableState) -> None:
        self.state = state

    def submit(self, item: Any) -> bool:
        if item is END:
            self.state.complete = True
            return True
        self.state.update(item[1])
        release_all(item[3])
        return True

    def blocked(self) -> None:
        return None


class JoinFeeds:
    """The joined inputs of one start of rule ``rule_id``."""

    def __init__(self, rule_id: str, plan: JoinPlan, sources: list[JoinSource], windowed: bool,
                 clock: Any, scheduler: Any) -> None:
        self.rule_id = rule_id
        self.plan = plan
        self.sources = sources
        self.windowed = windowed
        self.clock = clock
        self.scheduler = scheduler
        self.metrics = [NodeMetrics(f"source_{s.input.name}_0") for s in sources]
        self.feeds: list[SourceFeed] = []
        self._closed = False

    def wrap(self, ops: Any) -> _Tagged:
        """What the FROM stream's feed hands its batches to."""
        return _Tagged(ops, self.plan.primary.name, 0 if self.windowed else None, ends=True)

    def probe(self) -> None:
        for s in self.sources:
            quietly(self._create(s).close)

    def _create(self, s: JoinSource) -> Any:
        ctx = Context(plugin_name=s.plugin.name, rule_id=self.rule_id, op_id=f"source_{s.input.name}")
        what = f"source '{s.plugin.name}' of {s.input.source.what} {s.input.source.name}"
        return create(s.plugin, s.config, ctx, what)

    def start(self, ops: Any, join: JoinStage) -> None:
        """Create every input's source and start reading; the tables go to ``join``."""
        sides = {i.name: n for n, i in enumerate(self.plan.inputs)}
        try:
            for s, metrics in zip(self.sources, self.metrics):
                source = self._create(s)
                feed = SourceFeed(s.input.name, source, self.clock, self.scheduler)
                self.feeds.append(feed)
                feed.decoder = make_decoder(s.input.source, source.schema(), feed.decode_error)
                if s.input.source.is_table:
                    state = TableState(s.input.source)
                    join.tables[s.input.name] = state
                    target: Any = _TableFill(state)
                else:
                    target = _Tagged(ops, s.input.name, sides[s.input.name], ends=False)
                feed.attach(Inlet(self.rule_id, metrics, target))
        except BaseException:
            self.close()
            raise
        for feed in self.feeds:
            feed.start()

    def stop(self) -> None:
        for feed in self.feeds:
            feed.stop()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for feed in self.feeds:
            feed.stop()
            if feed.join(1.0):  # a source still inside a call is left open (see runtime)
                quietly(feed.source.close)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for feed, m in zip(self.feeds, self.metrics):
            m.connection_status = feed.status()
            out.update(m.flat())
        return out


__all__ = ["JoinFeeds", "JoinSource"]
