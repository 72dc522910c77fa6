"""Helpers of the engine tests (the fixtures are in conftest.py, bounded waiting in
tests/helpers.py): a harness that feeds a rule and reads what it emitted. Nothing here sleeps
to let time pass."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from helpers import wait_for
from plutino.engine import ManualClock, RuleManager
from plutino.engine.runtime import RuleRuntime
from plutino.io.memory import MemoryBroker, Subscription

#: A start time on a whole minute (so 10 s and 1 min windows start exactly here).
T0 = 1_700_000_040_000
WAIT_S = 10.0


class RuleHandle:
    """A started rule whose stream reads topic ``in_<stream>`` and whose memory sink writes
    topic ``out_<rule>``."""

    def __init__(self, harness: "Harness", rule_id: str, topic_in: str, output: Subscription) -> None:
        self.h = harness
        self.id = rule_id
        self.topic_in = topic_in
        self.output = output

    @property
    def runtime(self) -> RuleRuntime:
        return self.h.manager.runtime(self.id)

    def feed(self, rows: list[dict[str, Any]] | pa.RecordBatch, schema: pa.Schema | None = None) -> None:
        """Publish a batch and wait until the rule's source has queued it for the operators."""
        batch = rows if isinstance(rows, pa.RecordBatch) else pa.RecordBatch.from_pylist(rows, schema=schema)
        m = self.runtime.source_metrics
        out_before, errors_before = m.records_out, m.exceptions
        self.h.broker.publish(self.topic_in, batch)
        wait_for(
            lambda: m.records_out >= out_before + batch.num_rows or m.exceptions > errors_before,
            f"rule {self.id} to take the batch in",
        )

    def settle(self) -> None:
        assert self.runtime.wait_idle(WAIT_S), f"rule {self.id} did not become idle"

    def tick(self, to_ms: int) -> None:
        """Move the clock to ``to_ms`` and wait until the rule has processed the tick."""
        self.h.clock.set(to_ms)
        self.settle()

    def take(self) -> list[list[dict[str, Any]]]:
        """Every batch emitted so far (after settling), as lists of rows."""
        self.settle()
        out = []
        while True:
            batch = self.output.get(timeout=0)
            if batch is None:
                return out
            out.append(batch.to_pylist())

    def rows(self) -> list[dict[str, Any]]:
        return [row for batch in self.take() for row in batch]

    def status(self) -> dict[str, Any]:
        return self.h.manager.rule_status(self.id)


class Harness:
    def __init__(self, manager: RuleManager, broker: MemoryBroker, clock: ManualClock) -> None:
        self.manager = manager
        self.broker = broker
        self.clock = clock

    def stream(self, name: str, fields: str = "", props: str = "") -> None:
        extra = f", {props}" if props else ""
        self.manager.create_stream(
            f'CREATE STREAM {name} ({fields}) WITH (TYPE="memory", DATASOURCE="in_{name}"{extra})'
        )

    def rule(
        self, rule_id: str, sql: str, options: dict[str, Any] | None = None, actions: list[dict[str, Any]] | None = None
    ) -> RuleHandle:
        output = self.broker.subscribe(f"out_{rule_id}")
        body: dict[str, Any] = {
            "id": rule_id,
            "sql": sql,
            "actions": actions or [{"memory": {"topic": f"out_{rule_id}"}}],
        }
        if options:
            body["options"] = options
        self.manager.create_rule(body)
        stream = self.manager.runtime(rule_id).plan.stream
        return RuleHandle(self, rule_id, stream.datasource, output)

