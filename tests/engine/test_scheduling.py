"""Rules on the shared scheduler: no threads of their own, shared feeds, and acknowledgements
given only once every rule is done with a batch (at-least-once)."""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Callable, Iterator

import pyarrow as pa
import pytest

from engine_helpers import T0, Harness
from helpers import wait_for
from plutino.engine import RuleManager
from plutino.engine.scheduler import Scheduler
from plutino.io.nop import NopSinkPlugin
from plutino_contract.protocols import Context

SCHEMA = pa.schema([("v", pa.int64())])


class AckingSource:
    """A driven source that can replay: it says when it has data and acknowledges per batch."""

    def __init__(self) -> None:
        self.pending: collections.deque[pa.RecordBatch] = collections.deque()
        self.ready: Callable[[], None] | None = None
        self.acked: list[int] = []
        self.opened = 0
        self.closed = False
        self._last: list[int] = []
        self._groups: collections.deque[list[Any]] = collections.deque()
        self._lock = threading.Lock()

    def schema(self) -> pa.Schema:
        return SCHEMA

    def open(self) -> None:
        self.opened += 1

    def set_ready(self, callback: Callable[[], None]) -> None:
        self.ready = callback
        if self.pending:
            callback()

    def push(self, values: list[int]) -> None:
        self.pending.append(pa.RecordBatch.from_pydict({"v": values}, schema=SCHEMA))
        if self.ready is not None:
            self.ready()

    def next(self, timeout: float) -> pa.RecordBatch | None:
        if not self.pending:
            return None
        batch = self.pending.popleft()
        self._last = batch.column(0).to_pylist()
        return batch

    def take_ack(self) -> Callable[[], None]:
        """Acknowledgements go out in the order the batches were read (as MQTT's PUBACKs),
        whatever order the engine releases them in."""
        group = [self._last, False]
        self._groups.append(group)

        def ack() -> None:
            with self._lock:
                group[1] = True
                while self._groups and self._groups[0][1]:
                    self.acked.extend(self._groups.popleft()[0])

        return ack

    def status(self) -> str:
        return "connected"

    def close(self) -> None:
        self.closed = True


class AckingPlugin:
    name, version, kind = "acking", "1.0.0", "source"

    def __init__(self) -> None:
        self.opened: list[AckingSource] = []

    def create(self, config: Any, context: Context) -> AckingSource:
        source = AckingSource()
        original = source.open

        def open_and_note() -> None:
            original()
            self.opened.append(source)

        source.open = open_and_note  # type: ignore[method-assign]
        return source


class GatedSink:
    """A sink whose writes wait for ``gate``; what it wrote goes to ``written``."""

    def __init__(self, gate: threading.Event, written: list[int]) -> None:
        self.gate, self.written = gate, written

    def open(self) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...

    def status(self) -> str:
        return "connected"

    def write(self, batch: pa.RecordBatch) -> None:
        self.gate.wait()
        self.written.extend(batch.column(0).to_pylist())


class GatedPlugin:
    name, version, kind = "gated", "1.0.0", "sink"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.written: list[int] = []

    def create(self, config: Any, context: Context) -> GatedSink:
        return GatedSink(self.gate, self.written)


@pytest.fixture(autouse=True)
def nop(registry: Any) -> None:
    registry.register(NopSinkPlugin())


@pytest.fixture
def acking(registry: Any) -> AckingPlugin:
    plugin = AckingPlugin()
    registry.register(plugin)
    return plugin


@pytest.fixture
def gated(registry: Any) -> Iterator[GatedPlugin]:
    plugin = GatedPlugin()
    registry.register(plugin)
    yield plugin
    plugin.gate.set()


def only_source(plugin: AckingPlugin) -> AckingSource:
    wait_for(lambda: len(plugin.opened) == 1, "the source to open")
    return plugin.opened[0]


def test_a_thousand_rules_run_on_a_handful_of_threads(manager: RuleManager, acking: AckingPlugin, gated: GatedPlugin):
    gated.gate.set()
    manager.create_stream('CREATE STREAM s (v BIGINT) WITH (TYPE="acking")')
    before = threading.active_count()
    for i in range(1000):
        manager.create_rule({"id": f"r{i}", "sql": "SELECT v FROM s WHERE v > 20", "actions": [{"gated": {}}]})
    wait_for(lambda: len(acking.opened) == 1000, "every source to open")
    assert threading.active_count() - before <= manager.scheduler.max_threads // 4
    for source in acking.opened[::100]:
        source.push([10, 30])
    wait_for(lambda: len(gated.written) == 10, "ten rules to write")
    assert gated.written == [30] * 10


def test_a_shared_stream_has_one_source_that_starts_with_its_first_rule_and_stops_with_its_last(
    manager: RuleManager, acking: AckingPlugin
):
    manager.create_stream('CREATE STREAM s (v BIGINT) WITH (TYPE="acking", SHARED="true")')
    for rid in ("a", "b", "c"):
        manager.create_rule({"id": rid, "sql": "SELECT v FROM s", "actions": [{"nop": {}}]})
    shared = only_source(acking)
    assert manager.shared_feeds.readers() == {"s": 3}
    shared.push([1, 2, 3])
    for rid in ("a", "b", "c"):
        wait_for(lambda r=rid: manager.rule_status(r)["source_s_0_records_in_total"] == 3, f"{rid} to read")
    wait_for(lambda: shared.acked == [1, 2, 3], "one acknowledgement, once all three are done")
    # one rule stops: the feed goes on for the others; the last one closes it
    manager.stop_rule("a")
    assert not shared.closed
    shared.push([9])
    wait_for(lambda: manager.rule_status("b")["source_s_0_records_in_total"] == 4, "b to read on")
    assert manager.rule_status("a")["source_s_0_records_in_total"] == 3
    wait_for(lambda: shared.acked == [1, 2, 3, 9], "the acknowledgement without the stopped rule")
    manager.stop_rule("b")
    manager.stop_rule("c")
    assert shared.closed
    assert manager.shared_feeds.readers() == {}
    manager.start_rule("a")  # a new feed, a new source
    wait_for(lambda: len(acking.opened) == 2, "a fresh source for the stream's first rule")


def test_every_shared_rule_gets_the_same_rows_as_an_unshared_one(h: Harness, manager: RuleManager,
                                                                   acking: AckingPlugin):
    manager.create_stream('CREATE STREAM s (v BIGINT) WITH (TYPE="acking", SHARED="true")')
    manager.create_stream('CREATE STREAM u (v BIGINT) WITH (TYPE="acking")')
    subs = {rid: h.broker.subscribe(f"out_{rid}") for rid in ("a", "b", "c", "alone")}
    for rid in subs:
        stream = "u" if rid == "alone" else "s"
        manager.create_rule({"id": rid, "sql": f"SELECT v * 2 AS w FROM {stream} WHERE v % 2 = 1",
                             "actions": [{"memory": {"topic": f"out_{rid}"}}]})
    wait_for(lambda: len(acking.opened) == 2, "one source per stream")
    for source in acking.opened:
        for values in ([1, 2, 3], [4, 5], [7]):
            source.push(values)
    got = {}
    for rid, sub in subs.items():
        wait_for(lambda r=rid: manager.rule_status(r)["sink_memory_0_0_rows_in_total"] == 4, f"{rid} to write")
        got[rid] = [row["w"] for batch in iter(lambda s=sub: s.get(timeout=0), None) for row in batch.to_pylist()]
    assert got["alone"] == [2, 6, 10, 14]
    assert got["a"] == got["b"] == got["c"] == got["alone"]


def test_a_batch_is_acknowledged_only_once_its_rows_were_written(manager: RuleManager, acking: AckingPlugin,
                                                                gated: GatedPlugin):
    manager.create_stream('CREATE STREAM s (v BIGINT) WITH (TYPE="acking")')
    manager.create_rule({"id": "r", "sql": "SELECT v FROM s WHERE v > 0", "actions": [{"gated": {}}]})
    source = only_source(acking)
    source.push([1, 2])
    source.push([0])  # dropped by the WHERE: acknowledged once the batches before it are
    time.sleep(0.1)
    assert source.acked == []
    gated.gate.set()
    wait_for(lambda: source.acked == [1, 2, 0], "the acknowledgements")
    assert gated.written == [1, 2]


def test_a_stop_does_not_acknowledge_what_it_did_not_deliver(manager: RuleManager, acking: AckingPlugin,
                                                            gated: GatedPlugin):
    manager.create_stream('CREATE STREAM s (v BIGINT) WITH (TYPE="acking")')
    manager.create_rule({"id": "r", "sql": "SELECT v FROM s", "actions": [{"gated": {}}],
                         "options": {"drainTimeout": 100}})
    source = only_source(acking)
    source.push([1])
    source.push([2])
    wait_for(lambda: manager.rule_status("r")["source_s_0_records_in_total"] == 2, "both batches in")
    stopper = threading.Thread(target=manager.stop_rule, args=("r",))
    stopper.start()
    time.sleep(0.3)  # past the drain: the stop waits for the write in progress
    gated.gate.set()
    stopper.join(15)
    status = manager.rule_status("r")
    assert status["sink_gated_0_0_records_undelivered_total"] == 1
    assert gated.written == [1]
    assert source.acked == [1]  # 2 was not delivered: not acknowledged, so the source replays it
    assert source.closed


def test_a_window_holds_the_acknowledgement_until_it_emits(h: Harness, manager: RuleManager,
                                                           acking: AckingPlugin):
    manager.create_stream('CREATE STREAM s (v BIGINT) WITH (TYPE="acking")')
    out = h.broker.subscribe("out_w")
    manager.create_rule({"id": "w", "sql": "SELECT sum(v) AS total FROM s GROUP BY TUMBLINGWINDOW(ss, 10)",
                         "actions": [{"memory": {"topic": "out_w"}}]})
    source = only_source(acking)
    source.push([1, 2])
    source.push([3])
    runtime = manager.runtime("w")
    wait_for(lambda: manager.rule_status("w")["source_s_0_records_in_total"] == 3, "the rows in")
    assert runtime.wait_idle(5)
    assert source.acked == []
    h.clock.set(T0 + 10_000)
    assert runtime.wait_idle(5)
    wait_for(lambda: source.acked == [1, 2, 3], "the acknowledgements after the window closed")
    assert out.get(timeout=5).to_pylist() == [{"total": 6}]


def test_the_pool_grows_when_its_threads_are_blocked():
    scheduler = Scheduler(min_threads=2, max_threads=8)
    release = threading.Event()
    for _ in range(2):
        scheduler.submit(release.wait)
    ran = threading.Event()
    scheduler.submit(ran.set)
    try:
        assert ran.wait(5), "a task waited forever behind blocked threads"
        assert scheduler.threads() == 3
    finally:
        release.set()


def test_timers_run_in_order_and_can_be_cancelled():
    scheduler = Scheduler(min_threads=2)
    seen: list[str] = []
    done = threading.Event()
    scheduler.call_later(0.05, lambda: seen.append("second"))
    scheduler.call_later(0.01, lambda: seen.append("first"))
    scheduler.call_later(0.03, lambda: seen.append("cancelled")).cancel()
    scheduler.call_later(0.1, done.set)
    assert done.wait(5)
    assert seen == ["first", "second"]


def test_the_system_clock_closes_a_window_from_its_one_alarm_thread(registry: Any, broker: Any):
    manager = RuleManager(registry)  # the wall clock, not the tests' manual one
    try:
        manager.create_stream('CREATE STREAM s (v BIGINT) WITH (TYPE="memory", DATASOURCE="in_s")')
        out = broker.subscribe("out_w")
        manager.create_rule({"id": "w", "sql": "SELECT count(*) AS n FROM s GROUP BY TUMBLINGWINDOW(ms, 200)",
                             "actions": [{"memory": {"topic": "out_w"}}]})
        broker.publish("in_s", pa.RecordBatch.from_pylist([{"v": 1}, {"v": 2}]))
        batch = out.get(timeout=5)
        assert batch is not None and batch.to_pylist() == [{"n": 2}]
        assert not any(t.name == "plutino-clock" for t in threading.enumerate())
    finally:
        manager.shutdown()
