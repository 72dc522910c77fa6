"""At-least-once over MQTT: a QoS-1 rule with a persistent session loses no message across a
graceful stop and start, a restart, a rule update, a plugin update, a worker crash and a
SIGKILL of the whole host (issue 13).

Each test runs a real mosquitto (see :class:`~.mqtt_loss_helpers.LossBroker` for its settings
and why), a real server (``python -m plutino serve`` on its own data dir and port) and this
shape::

    CREATE STREAM s (id BIGINT) WITH (DATASOURCE="loss/in", FORMAT="json", CONF_KEY="loss")
    rule "loss": SELECT id FROM s  ->  a file sink (JSON lines) and a slow rest sink

where ``etc/sources/mqtt.yaml``'s section ``loss`` sets ``qos: 1``, a fixed ``clientid`` and
``cleanSession: false``. The rest sink's endpoint answers each batch after SINK_DELAY_S
(:class:`~.mqtt_loss_helpers.SlowReceiver`) and the rule's queues hold BUFFER batches, so
hundreds of messages are always read from the broker but not acknowledged: waiting in the
engine's queues for the slow sink, and (while the queues are full) in the source's buffer.

A publisher sends ``{"id": i}`` for i in 0..N-1 at QoS 1 and RATE messages a second. Once a
quarter of the ids reached both sinks, at a moment when at least AT_STAKE rows are in the file
but not yet at the slow sink (read, not acknowledged), the test does its one disruption while
the publisher goes on. When the broker has acknowledged every publish, the test waits for
every id at both sinks and asserts:

* **0 lost**: every id 0..N-1 reached each sink (the broker holds every message until the
  source acknowledges it, and the source acknowledges only what every sink wrote);
* **duplicates are counted**: a row written twice came twice from the broker, flagged as sent
  again (DUP), so the rule's ``source_s_0_records_redelivered_total`` is at least the number
  of extra copies at either sink.

Each test prints its figures (rows, lost, duplicates, redelivered, the state at the
disruption); run with ``-s`` to see them.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from helpers import wait_for

from .mqtt_loss_helpers import (
    CONF_KEY,
    RULE,
    STREAM,
    TOPIC,
    WAIT_S,
    FileTail,
    LossBroker,
    LossServer,
    Output,
    Publisher,
    SlowReceiver,
    alive,
    ranges,
)

N = 12_000  # messages per test
RATE = 3_000  # messages a second: 4 s of publishing, the disruption about 1 s in
SINK_DELAY_S = 0.05  # the slow rest sink's latency per batch
BUFFER = 4  # batches per queue of the rule (its option bufferLength; default 16)
AT_STAKE = 100  # rows in the file but not yet at the slow sink when the disruption comes
REDELIVERED = f"source_{STREAM}_0_records_redelivered_total"
SQL = f"SELECT id FROM {STREAM}"
ECHO_SQL = f"SELECT echo(id) AS id FROM {STREAM}"


@dataclass
class Rig:
    """A broker, a server, the rule's two sinks, the publisher, and notes for the report."""

    tmp: Path
    broker: LossBroker
    server: LossServer
    client_id: str
    receiver: SlowReceiver
    file: FileTail
    publisher: Publisher | None = None
    notes: list[str] = field(default_factory=list)

    def new_server(self) -> LossServer:
        """A server (started) on the same data dir, broker and session as the first one."""
        self.server = LossServer(self.tmp / "data", self.broker, self.client_id).start()
        return self.server

    def actions(self) -> list[dict[str, Any]]:
        return [{"file": {"path": str(self.file.path)}}, {"rest": {"url": self.receiver.url, "timeout": 30000}}]

    def create(self, sql: str = SQL) -> None:
        """The stream and the rule; returns once the rule's subscription is acknowledged (only
        then does the broker keep the session's messages)."""
        self.server.ok("post", "/streams", json={
            "sql": f'CREATE STREAM {STREAM} (id BIGINT) WITH (DATASOURCE="{TOPIC}", FORMAT="json", '
                   f'CONF_KEY="{CONF_KEY}")'})
        self.server.ok("post", "/rules", json={"id": RULE, "sql": sql, "actions": self.actions(),
                                               "options": {"bufferLength": BUFFER}})
        self.server.wait_subscribed()

    def written(self) -> tuple[int, int]:
        """The distinct ids in the file, and at the slow sink, so far."""
        return self.file.read().distinct, self.receiver.distinct

    def run(self, disrupt: Callable[[Rig], None]) -> None:
        """Publish N ids, ``disrupt`` once a quarter reached both sinks while AT_STAKE rows are
        read and not acknowledged, then check that every id reached each sink (duplicates
        allowed, and counted by the source)."""
        began = time.monotonic()
        publisher = self.publisher = Publisher(self.broker, N, RATE).start()
        at: dict[str, int] = {}

        def mid_stream() -> bool:
            file, rest = self.written()
            at.update(file=file, rest=rest, broker=publisher.acked)
            return rest >= N // 4 and file - rest >= AT_STAKE

        wait_for(mid_stream, f"{N // 4} ids at both sinks and {AT_STAKE} more in the file", WAIT_S)
        disrupt(self)
        self.notes.insert(0, f"disrupted when the broker had {at['broker']} messages, the file {at['file']} ids "
                             f"and the slow sink {at['rest']}")
        publisher.join()
        try:
            wait_for(lambda: min(self.written()) >= N, f"all {N} ids at both sinks", WAIT_S)
        except AssertionError as exc:
            self.notes.append(str(exc))
        status = self.server.status()
        redelivered = status.get(REDELIVERED, 0)
        outputs = {"file": self.file.read(), "rest": self.receiver.output()}
        report = self.report(outputs, redelivered, time.monotonic() - began)
        print(f"\n{report}")
        for name, out in outputs.items():
            assert not out.bad_lines, f"{name}: output that is not rows: {out.bad_lines[:5]}; {report}"
        assert not any(out.missing(N) for out in outputs.values()), (
            f"lost messages: {report}\nserver log (end):\n{self.server.output()[-3000:]}")
        for name, out in outputs.items():
            assert out.duplicates <= redelivered, f"{name}: duplicates not counted as redelivered: {report}"
        assert status["status"] == "running", status

    def report(self, outputs: dict[str, Output], redelivered: int, seconds: float) -> str:
        parts = [f"{N} published"]
        for name, out in outputs.items():
            lost = out.missing(N)
            twice = sorted(i for i, n in out.counts.items() if n > 1)
            parts.append(f"{name}: {sum(out.counts.values())} rows, lost {len(lost)}"
                         f"{' (' + ranges(lost)[:300] + ')' if lost else ''}, duplicates {out.duplicates}"
                         f"{' (' + ranges(twice)[:200] + ')' if twice else ''}")
        parts += [f"{REDELIVERED} {redelivered}", f"{self.receiver.requests} requests to the slow sink",
                  f"{seconds:.1f} s", *self.notes]
        return "; ".join(parts)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    broker = LossBroker(tmp_path / "broker").start()
    receiver = SlowReceiver(SINK_DELAY_S)
    client_id = f"plutino-loss-{uuid.uuid4().hex[:8]}"
    server: LossServer | None = None
    rig_: Rig | None = None
    try:
        server = LossServer(tmp_path / "data", broker, client_id).start()
        rig_ = Rig(tmp_path, broker, server, client_id, receiver, FileTail(tmp_path / "out" / "ids.jsonl"))
        yield rig_
    finally:
        if rig_ is not None:
            server = rig_.server
            if rig_.publisher is not None:
                rig_.publisher.close()
        if server is not None and server.proc is not None:
            server.kill_all()  # quick, and no worker is left behind
        receiver.close()
        broker.stop()


# -- graceful: stop and start, restart, rule update, plugin update -----------------------------
def _stop_then_start(rig: Rig) -> None:
    """POST /rules/{id}/stop (a graceful stop: what was taken in drains to the sinks), then
    /start while the publisher goes on (the broker queues for the session meanwhile)."""
    rig.server.ok("post", f"/rules/{RULE}/stop")
    rig.server.wait_status(lambda s: str(s.get("status", "")).startswith("stopped"), "the rule to stop")
    rig.server.ok("post", f"/rules/{RULE}/start")
    rig.server.wait_subscribed()


def _restart(rig: Rig) -> None:
    """POST /rules/{id}/restart: a graceful stop and a start in one request."""
    started = rig.server.status()["lastStartTimestamp"]
    rig.server.ok("post", f"/rules/{RULE}/restart")
    rig.server.wait_status(lambda s: s.get("lastStartTimestamp", 0) > started, "the rule to start again")
    rig.server.wait_subscribed()


@pytest.mark.parametrize("disrupt", [_stop_then_start, _restart], ids=["stop-start", "restart"])
def test_a_graceful_stop_or_restart_loses_nothing(rig: Rig, disrupt: Callable[[Rig], None]) -> None:
    rig.create()
    rig.run(disrupt)


def test_a_rule_update_loses_nothing(rig: Rig) -> None:
    """PUT /rules/{id} with the same SQL and a changed option restarts the rule on the new
    definition; nothing published meanwhile is lost."""

    def update(rig: Rig) -> None:
        started = rig.server.status()["lastStartTimestamp"]
        rig.server.ok("put", f"/rules/{RULE}", json={"id": RULE, "sql": SQL, "actions": rig.actions(),
                                                      "options": {"bufferLength": BUFFER + 1}})
        rig.server.wait_status(lambda s: s.get("lastStartTimestamp", 0) > started, "the updated rule to start")
        rig.server.wait_subscribed()
        assert rig.server.get(f"/rules/{RULE}").json()["options"]["bufferLength"] == BUFFER + 1

    rig.create()
    rig.run(update)


@pytest.fixture(scope="module")
def echo_versions(plugin_build: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The packages of the native function ``echo``: the bundled 1.0.0, and the same code
    rebuilt as 1.1.0 (as tests/api/conftest.py's ``echo_v2``), for a hot update."""
    from plutino.packages.format import pack
    from plutino.packages.scaffold import build_project

    work = tmp_path_factory.mktemp("echo-versions")
    v1 = pack(plugin_build / "functions" / "echo.so", work / "echo.zip")
    source = Path(__file__).resolve().parents[2] / "native_plugins" / "functions" / "echo" / "echo.c"
    (work / "v2").mkdir()
    (work / "v2" / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.18)\nproject(echo_v2 C)\nfind_package(PlutinoContract 1.0 REQUIRED)\n"
        f'plutino_add_plugin(echo KIND function VERSION 1.1.0 SOURCES "{source}")\n')
    (so,) = [p for p in build_project(work / "v2", quiet=True) if p.name == "echo.so"]
    return v1, pack(so, work / "echo-1.1.0.zip")


def test_a_plugin_update_loses_nothing(rig: Rig, echo_versions: tuple[Path, Path]) -> None:
    """The rule calls the native function echo; PUT /plugins/functions/echo with version 1.1.0
    restarts it on the new version (stopped at a batch boundary, drained, started again)."""
    v1, v2 = echo_versions
    rig.server.ok("post", "/plugins/functions", json={"name": "echo", "file": v1.as_uri()})

    def update_plugin(rig: Rig) -> None:
        rig.server.ok("put", "/plugins/functions/echo", json={"name": "echo", "file": v2.as_uri()})
        rig.server.wait_status(lambda s: s.get("pluginVersions") == {"function/echo": "1.1.0"},
                               "the rule to run echo 1.1.0")
        rig.server.wait_subscribed()

    rig.create(ECHO_SQL)
    assert rig.server.status()["pluginVersions"] == {"function/echo": "1.0.0"}
    rig.run(update_plugin)


# -- crashes: a worker, the whole host ---------------------------------------------------------
def test_a_worker_crash_loses_nothing(rig: Rig) -> None:
    """SIGKILL of the rule's worker (a crash: nothing drains, nothing more is acknowledged);
    the supervisor starts the rule again on another worker, which reads the same session."""
    rig.create()
    pid = rig.server.worker_pid()  # asked before: the kill comes right when the rows are at stake

    def kill_worker(rig: Rig) -> None:
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not alive(pid), f"worker pid {pid} to end")
        rig.server.wait_status(lambda s: f"pid {pid}," not in s.get("worker", f"pid {pid},"),
                               "the rule to run on another worker")
        rig.server.wait_subscribed()
        rig.notes.append(f"worker {pid} killed, the rule now on {rig.server.status()['worker']}")

    rig.run(kill_worker)


def test_a_sigkill_of_the_host_loses_nothing(rig: Rig) -> None:
    """SIGKILL of the server and all its workers at once; a new server on the same data dir
    restores the running rule, and the broker hands over what was not acknowledged."""
    rig.create()

    def kill_host(rig: Rig) -> None:
        workers = rig.server.kill_all()
        assert workers, "the server had no worker to kill"
        rig.notes.append(f"server and workers {workers} killed")
        rig.new_server()
        rig.server.wait_subscribed()

    rig.run(kill_host)
