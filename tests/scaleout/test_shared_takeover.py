"""A share group's surviving host takes over a SIGKILLed host's persistent session, so the dead
host's share goes on without loss, and gives it back when that host returns (issue 18;
plutino/io/mqtt_takeover.py).

Two real ``plutino serve`` processes, each with a persistent session under its own client id
(test_shared_subscription_hosts.py's rig: QoS 1, ``cleanSession: false``), run the same stream
(``SHARE_GROUP="g1"``) and rules against a real mosquitto. Host A is SIGKILLed mid-stream: the
broker publishes A's will (its presence, ``gone``), and B -- the only survivor, so the one to
adopt -- connects with A's client id and resumes A's session: the messages A had in flight and
not acknowledged come again, then those queued for A, then A's round-robin share of new ones.
Then A restarts on its folder with its client id: the broker hands it its session back, closing
B's adopted connection, and B does not reconnect with A's id.

Asserted: every id published is written by A (before the kill) or B (no loss); an id written by
both is one A wrote and had not acknowledged, which the broker sent B again (counted in B's
``records_redelivered_total``); B's log names the adoption once and its end once (no fight);
and the messages published once A is back are split between A and B, each written exactly once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from helpers import wait_for
from scaleout.test_shared_subscription_hosts import REDELIVERED, TOPIC, Host, Rig, _shares, rig_in

pytestmark = pytest.mark.scaleout

WAIT_S = 60.0
ADOPTED = "source_s_0_sessions_adopted"  # the dead hosts' sessions a host holds, in its rule status
RATE = 2000  # messages a second
WATCH_S = 4.0  # how long after a's return the logs must show no second adoption


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from rig_in(tmp_path)


def _publish(rig: Rig, ids: range) -> None:
    """Publish ``{"id": i}`` for ``ids`` at QoS 1, ``RATE`` a second; return once the broker
    acknowledged every one (so it holds all of them: whatever is missing later, the hosts lost)."""
    acked = threading.Semaphore(0)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"takeover-publisher-{ids.start}")
    client.max_inflight_messages_set(1000)
    client.on_publish = lambda *args: acked.release()
    client.connect("127.0.0.1", rig.broker.port)
    client.loop_start()
    try:
        began = time.monotonic()
        for k, i in enumerate(ids):
            delay = began + k / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing, not waiting for a condition
            assert client.publish(TOPIC, b'{"id": %d}' % i, qos=1).rc == paho.MQTT_ERR_SUCCESS
        for _ in ids:
            assert acked.acquire(timeout=WAIT_S), "the broker did not acknowledge a publish"
    finally:
        client.disconnect()
        client.loop_stop()


def _lines(host: Host, text: str) -> int:
    return sum(1 for line in host.server.output().splitlines() if text in line)


def test_a_survivor_takes_over_a_killed_hosts_session_and_gives_it_back(rig: Rig) -> None:
    began = time.monotonic()
    with ThreadPoolExecutor(2) as starting:  # the two servers start side by side
        a, b = starting.map(rig.host, ["a", "b"])
    rig.deploy_first(a)
    rig.deploy_like(b)

    n = 6000
    killed = rig.kill_mid_stream(a, b, n)
    killed_at, before_kill = killed.published, killed.written

    adopted = f"takes over the session of {a.client_id}"
    try:
        wait_for(lambda: len(rig.union([a, b])) == n, f"all {n} ids across a and b (b taking a's session)", WAIT_S)
    except AssertionError as exc:
        raise AssertionError(f"{exc} ({_shares([a, b])}); b's rules: {b.statuses()}\nb's log (end):\n"
                             f"{b.server.output()[-3000:]}") from None
    took_s = time.monotonic() - killed.at
    ids_a, ids_b = a.written(), b.written()
    assert ids_a == before_kill
    assert _lines(b, adopted) == 1, b.server.output()[-3000:]
    assert _lines(b, f"resumed the session of {a.client_id}") == 1, b.server.output()[-3000:]
    assert b.server.status("ids").get(ADOPTED) == 1, b.statuses()  # the rule's status says so
    redelivered = b.server.status("ids").get(REDELIVERED, 0)
    twice = set(ids_a) & set(ids_b)
    assert set(ids_a) | set(ids_b) == set(range(n)), "an id was lost"
    assert all(count == 1 for ids in (ids_a, ids_b) for count in ids.values()), "a host wrote an id twice"
    assert len(twice) <= redelivered, "an id written by a and by b was not counted as sent again"
    assert b.written("thirds").keys() == {i for i in ids_b if i % 3 == 0}
    print(f"\n{n} messages, host a SIGKILLed after {killed_at} were published: a wrote {sum(ids_a.values())}, "
          f"b {sum(ids_b.values())} (its own share and a's session, all ids {took_s:.1f} s after the kill); "
          f"written by both: {len(twice)} (b's {REDELIVERED}: {redelivered})")

    # A comes back with its client id: the broker gives it its session, b's adoption ends, no fight
    a2 = rig.host("a", client_id=a.client_id)
    a2.wait_subscribed()
    returned = time.monotonic()
    ended = f"no longer holds the session of {a.client_id}"
    wait_for(lambda: _lines(b, ended), f"b's adoption of {a.client_id} to end", WAIT_S)
    assert b.server.status("ids").get(ADOPTED) == 0, b.statuses()
    m = 2000
    _publish(rig, range(n, n + m))  # a second of publishing: b's log must not show a second adoption
    after = range(n, n + m)

    def split() -> bool:
        return set(after) <= rig.union([a2, b]).keys()

    try:
        wait_for(split, f"the {m} ids published after a came back, across a and b", WAIT_S)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; a: {a2.statuses()}, b: {b.statuses()}\nb's log (end):\n"
                             f"{b.server.output()[-3000:]}") from None
    # a fight shows within seconds (b would adopt again 1 s after its adoption ended, and a's lane
    # would log its lost connection): watch for WATCH_S after a's return, however quick the rest was
    time.sleep(max(0.0, returned + WATCH_S - time.monotonic()))
    new_a = {i: c for i, c in a2.written().items() if i >= n}
    new_b = {i: c for i, c in b.written().items() if i >= n}
    print(f"after a's return: a wrote {len(new_a)} of the {m} new ids, b {len(new_b)}; "
          f"b's log: {_lines(b, adopted)} adoption, {_lines(b, ended)} end; {time.monotonic() - began:.1f} s in all")
    fight = f"b fought a for its session:\n{b.server.output()[-3000:]}"
    assert _lines(b, adopted) == 1 and _lines(b, ended) == 1, fight
    assert _lines(a2, "disconnected from") == 0, f"a lost its connection:\n{a2.server.output()[-3000:]}"
    assert set(new_a) | set(new_b) == set(after), "an id published after a's return was lost"
    assert not set(new_a) & set(new_b), "an id published after a's return was written by both hosts"
    assert all(c == 1 for c in (*new_a.values(), *new_b.values())), "an id was written twice"
    assert new_a and new_b, "the messages published after a's return were not split between the two"
