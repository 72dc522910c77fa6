"""Several hosts, one stream: two real ``plutino serve`` processes split an MQTT stream through a
shared subscription of a real mosquitto, and a host killed mid-stream loses nothing (issue 18).

The shape, deployed to host A through the REST API and to host B by importing A's export::

    CREATE STREAM s (id BIGINT) WITH (DATASOURCE="scale/in", FORMAT="json", CONF_KEY="loss",
                                      SHARE_GROUP="g1", SHARED="true")
    rule "ids":   SELECT id FROM s                 -> out/ids.jsonl   (relative: each host's own folder)
    rule "thirds": SELECT id FROM s WHERE id % 3 = 0 -> out/thirds.jsonl

Each host's ``etc/sources/mqtt.yaml`` section ``loss`` gives it a persistent session (QoS 1,
``cleanSession: false``) under a client id of its own: the conf keys travel in the export, so B
imports A's document without its ``sourceConfig.mqtt`` and keeps its own (two hosts with one
client id would take the session from each other at every connection).

What mosquitto 2 does when a member of a shared subscription goes away (checked here with
``shareTakeover: false``, printed; with the default, a surviving host takes the dead member's
session over: test_shared_takeover.py):
its persistent session stays a member. The messages it had in flight (sent, not acknowledged)
stay in that session, and the group's round robin goes on giving the session its share of new
messages, queued for it -- none of them goes to the other members. So a killed host's share
waits at the broker for its session to come back: the test starts a replacement host C from A's
export *with* its conf keys (A's client id), which resumes A's session and gets everything A did
not acknowledge. (With a clean session the broker drops the dead member at once and new messages
go to the others, but what it had in flight is lost: at most once.)

Asserted: with both hosts up, every message is written once across the two (union all, no
duplicates, no id at both); across the kill, no id is lost, B never sees an id of A's session,
and an id written twice (by A before the kill and by C after it) is one the broker sent again,
counted in C's ``source_s_0_records_redelivered_total``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers import wait_for
from reliability.mqtt_loss_helpers import CONF_KEY, LossBroker, LossServer, Publisher

pytestmark = pytest.mark.scaleout

TOPIC = "scale/in"
GROUP = "g1"
STREAM_SQL = (f'CREATE STREAM s (id BIGINT) WITH (DATASOURCE="{TOPIC}", FORMAT="json", CONF_KEY="{CONF_KEY}", '
              f'SHARE_GROUP="{GROUP}", SHARED="true")')
RULES = {"ids": "SELECT id FROM s", "thirds": "SELECT id FROM s WHERE id % 3 = 0"}
RATE = 2000  # messages a second
WAIT_S = 60.0
REDELIVERED = "source_s_0_records_redelivered_total"


def _ids(path: Path) -> Counter[int]:
    """The ids a file sink wrote, counted (a line being written is left for the next read)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return Counter()
    return Counter(int(json.loads(line)["id"]) for line in text.split("\n")[:-1] if line)


@dataclass
class Host:
    """A server in a folder of its own (its cwd: the rules' relative paths land there)."""

    name: str
    server: LossServer
    folder: Path
    client_id: str

    def written(self, rule: str = "ids") -> Counter[int]:
        return _ids(self.folder / "out" / f"{rule}.jsonl")

    def statuses(self) -> str:
        return json.dumps({rule: self.server.status(rule) for rule in RULES})

    def wait_subscribed(self) -> None:
        for rule in RULES:
            self.server.wait_subscribed(rule)


@dataclass(frozen=True)
class Killed:
    """A host killed mid-stream: how many ids were published then, when, and what it had written."""

    published: int
    at: float
    written: Counter[int]


@dataclass
class Rig:
    tmp: Path
    broker: LossBroker
    hosts: list[Host] = field(default_factory=list)
    export: dict[str, object] = field(default_factory=dict)
    publishers: list[Publisher] = field(default_factory=list)

    def host(self, name: str, client_id: str | None = None, takeover: bool = True) -> Host:
        """A started server (not yet given streams or rules) with a persistent session of its own;
        ``takeover`` False: its conf says ``shareTakeover: false`` (a dead member's session is
        left to the broker). The same name again: the host restarted on its folder."""
        folder = self.tmp / name
        client_id = client_id or f"plutino-scale-{name}-{uuid.uuid4().hex[:8]}"
        server = LossServer(folder / "data", self.broker, client_id)
        if not takeover:
            conf = folder / "data" / "etc" / "sources" / "mqtt.yaml"
            conf.write_text(conf.read_text() + "  shareTakeover: false\n")
        host = Host(name, server.start(), folder, client_id)
        self.hosts.append(host)
        return host

    def deploy_first(self, host: Host) -> None:
        """The stream and rules through the REST API; keep the host's export for the others."""
        host.server.ok("post", "/streams", json={"sql": STREAM_SQL})
        for rule, sql in RULES.items():
            host.server.ok("post", "/rules", json={"id": rule, "sql": sql, "actions": [
                {"file": {"path": f"out/{rule}.jsonl", "fileType": "lines", "sendSingle": True}}]})
        host.wait_subscribed()
        self.export = json.loads(host.server.ok("get", "/data/export"))

    def deploy_like(self, host: Host, own_session: bool = True) -> None:
        """Import the first host's export. ``own_session``: without its mqtt conf keys, so the
        host keeps its own client id (another member of the group); else verbatim, so the host
        resumes the first host's session (its replacement)."""
        doc = json.loads(json.dumps(self.export))
        if own_session:
            doc["sourceConfig"].pop("mqtt")
        host.server.ok("post", "/data/import", json={"content": json.dumps(doc)})
        host.wait_subscribed()

    def publish(self, n: int) -> Publisher:
        publisher = Publisher(self.broker, n, RATE, topic=TOPIC)
        self.publishers.append(publisher)
        return publisher.start()

    def kill_mid_stream(self, victim: Host, other: Host, n: int) -> Killed:
        """Publish ``n`` ids at QoS 1 and, once both hosts wrote an eighth of them, SIGKILL
        ``victim`` (the server and its workers: nothing drains or acknowledges); return when
        every id is published."""
        publisher = self.publish(n)
        wait_for(lambda: min(len(victim.written()), len(other.written())) >= n // 8,
                 f"both hosts to write {n // 8} ids ({_shares([victim, other])})", WAIT_S)
        published = publisher.sent
        victim.server.kill_all()
        killed = Killed(published, time.monotonic(), victim.written())
        publisher.join(WAIT_S)
        return killed

    def union(self, hosts: list[Host], rule: str = "ids") -> Counter[int]:
        total: Counter[int] = Counter()
        for host in hosts:
            total.update(host.written(rule))
        return total


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from rig_in(tmp_path)


def rig_in(tmp_path: Path) -> Iterator[Rig]:
    """A broker, and what the test starts on it stopped at the end (test_shared_takeover.py too)."""
    rig_ = Rig(tmp_path, LossBroker(tmp_path / "broker").start())
    try:
        yield rig_
    finally:
        for publisher in rig_.publishers:
            publisher.close()
        for host in rig_.hosts:
            if host.server.proc is not None:
                host.server.kill_all()
        rig_.broker.stop()


def _shares(hosts: list[Host], rule: str = "ids") -> str:
    return ", ".join(f"{h.name} {sum(h.written(rule).values())}" for h in hosts)


def test_two_hosts_sharing_a_group_process_each_message_exactly_once(rig: Rig) -> None:
    began = time.monotonic()
    a, b = rig.host("a"), rig.host("b")
    bad = a.server.post("/streams", json={"sql": STREAM_SQL.replace(f'SHARE_GROUP="{GROUP}"', 'SHARE_GROUP="g/1"')})
    assert bad.status_code == 400, bad.text
    assert "contains '/'" in bad.json()["message"] and 'SHARE_GROUP="g1"' in bad.json()["message"], bad.text
    rig.deploy_first(a)
    rig.deploy_like(b)
    assert b.server.get("/rules").json() == a.server.get("/rules").json()
    assert b.server.get("/streams/s").json()["Options"]["share_group"] == GROUP

    n = 4000
    rig.publish(n).join(WAIT_S)
    wait_for(lambda: len(rig.union([a, b])) == n and len(rig.union([a, b], "thirds")) == len(range(0, n, 3)),
             f"all {n} ids written across the two hosts ({_shares([a, b])})", WAIT_S)

    ids_a, ids_b = a.written(), b.written()
    print(f"\n{n} messages at QoS 1: host a wrote {sum(ids_a.values())}, host b {sum(ids_b.values())} "
          f"({time.monotonic() - began:.1f} s with the starts)")
    assert set(ids_a) | set(ids_b) == set(range(n))
    assert not set(ids_a) & set(ids_b), "an id was written by both hosts"
    assert sum(ids_a.values()) + sum(ids_b.values()) == n, "an id was written twice"
    assert ids_a and ids_b, f"one host got nothing: {_shares([a, b])}"
    # the second rule of the shared stream reads the same share on each host
    for host in (a, b):
        thirds = host.written("thirds")
        assert set(thirds) == {i for i in host.written() if i % 3 == 0}, host.name
        assert all(count == 1 for count in thirds.values()), host.name


def test_a_host_killed_mid_stream_hands_its_share_on_without_loss(rig: Rig) -> None:
    began = time.monotonic()
    a, b = rig.host("a", takeover=False), rig.host("b", takeover=False)
    rig.deploy_first(a)
    rig.deploy_like(b)

    n = 6000
    killed = rig.kill_mid_stream(a, b, n)
    killed_at, before_kill = killed.published, killed.written

    # A's replacement: a fresh host given A's export with its conf keys, so A's client id
    c = rig.host("c", takeover=False)
    rig.deploy_like(c, own_session=False)
    try:
        wait_for(lambda: len(rig.union([a, b, c])) == n, f"all {n} ids across a, b and c", WAIT_S)
    except AssertionError as exc:
        raise AssertionError(f"{exc} ({_shares([a, b, c])}); c's rules: {c.statuses()}\nc's log (end):\n"
                             f"{c.server.output()[-3000:]}") from None

    ids_a, ids_b, ids_c = a.written(), b.written(), c.written()
    assert ids_a == before_kill
    redelivered = c.server.status("ids").get(REDELIVERED, 0)
    twice = set(ids_a) & set(ids_c)
    after = range(killed_at, n)
    to_b = sum(1 for i in after if i in ids_b)
    print(f"\n{n} messages, host a SIGKILLed after {killed_at} were published: a wrote {sum(ids_a.values())}, "
          f"b {sum(ids_b.values())}, c (a's session resumed) {sum(ids_c.values())}; of the {len(after)} published "
          f"after the kill b got {to_b} and a's session {len(after) - to_b}; written again by c: {len(twice)} "
          f"(c's {REDELIVERED}: {redelivered}); {time.monotonic() - began:.1f} s with the starts")
    assert set(ids_a) | set(ids_b) | set(ids_c) == set(range(n)), "an id was lost"
    assert not set(ids_b) & (set(ids_a) | set(ids_c)), "a message went to both sessions"
    assert all(count == 1 for ids in (ids_a, ids_b, ids_c) for count in ids.values()), "a host wrote an id twice"
    assert len(twice) <= redelivered, "an id written by a and by c was not counted as sent again"
