"""A share group's survivors take over a dead member's persistent session, so its share goes on.

What mosquitto 2 does (tests/scaleout/test_shared_subscription_hosts.py): a member of a shared
subscription with a persistent session (``cleanSession: false``, its own ``clientid``) that dies
*stays* in the group. The messages it had in flight, and its round-robin share of new ones,
queue in its session; none goes to the other members until a client resumes that session. So
the members resume it themselves, with no coordinator but the broker:

* **Presence.** A persistent lane (:mod:`.mqtt_hub`) whose subscriptions are all in one share
  group ``g`` publishes a retained ``{"state": "alive", "filters": [...], "adopted": [...]}`` to
  ``$plutino/share/<g>/members/<clientid>`` (:data:`PRESENCE_ROOT`; the client id URL-quoted)
  once connected, and leaves a Last Will there, retained ``{"state": "gone", ...}``: the broker
  publishes it when the connection dies (at once when a SIGKILL closes the socket, after 1.5
  keepalives for a partition). A graceful close publishes the same ``gone``: its session stays
  a member too. Every such lane subscribes to ``.../<g>/members/+``, so each member knows the
  others' last word (the retained ones too, on joining late).
* **Who adopts.** A member that is ``gone`` and that no ``alive`` member lists as ``adopted`` is
  an orphan; the alive member whose client id sorts first (the same answer at every member once
  they heard the same presences) connects with the orphan's client id and ``cleanSession:
  false`` -- :class:`Adoption`, :data:`ADOPT_DELAY_S` after the presence changed. The broker
  resumes the session: its in-flight messages come again (DUP, counted in
  ``records_redelivered_total``), then its queue, then its share of new messages, for as long
  as the adoption lasts. It does not subscribe: the session keeps its subscriptions. Messages
  go to the lane's own sources by topic and are acknowledged on the adopted connection only once
  the rules delivered them (each ack entry names its connection's queue, :mod:`.mqtt_acks`):
  the same at-least-once path as the lane's own messages.
* **Which sessions.** Only an orphan whose subscriptions are all shared ones of the group that
  this lane has sources for: a message of a subscription without a source here would be
  acknowledged unread (lost), and a non-shared one would be a second copy of what this host
  already gets. Else the member says why, once, in the log.
* **No fight.** An adopted connection has no will and never reconnects by itself (paho's
  ``reconnect_on_failure`` off). When the owner comes back with its client id, the broker takes
  the session over (mosquitto closes the adopter's socket; no will, since it has none); the
  adoption ends there, and the adopter looks again only :data:`RETRY_MIN_S` later, by which time
  the owner has said ``alive``. An adoption lost some other way (the adopter's network) is tried
  again then; one that ends within :data:`SHORT_S` of its start doubles the next wait, up to
  :data:`RETRY_MAX_S`, so two members that disagree cannot knock each other off in a loop.
* **The adopter dies.** Its adopted connections die with it, without wills; its own will says
  ``gone``, and with it no alive member lists the orphans it held: the next survivor adopts
  them all.

On by default for a persistent shared subscription; ``shareTakeover: false`` in the source's
conf turns it off (the dead member's share then waits at the broker for the member itself).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any, Protocol
from urllib.parse import quote, unquote

import orjson
import paho.mqtt.client as paho

from .mqtt_acks import SETTLE_S, AckQueue, settle_acks
from .mqtt_connection import Connection
from .mqtt_fast_client import Route, source_client
from .mqtt_topics import SHARE_PREFIX, split_share

_log = logging.getLogger("plutino.io.mqtt")

PRESENCE_ROOT = "$plutino/share"  # a $ topic: no user's '#' or '+/...' filter matches it
ADOPT_DELAY_S = 1.0  # after a presence changed: the wait before deciding (a restart's alive comes first)
RETRY_MIN_S = 1.0  # after an adoption ended: the wait before looking at that peer again
RETRY_MAX_S = 30.0
SHORT_S = 10.0  # an adoption that lasted less than this doubles the next wait


def presence_filter(group: str) -> str:
    return f"{PRESENCE_ROOT}/{group}/members/+"


def presence_topic(group: str, client_id: str) -> str:
    return f"{PRESENCE_ROOT}/{group}/members/{quote(client_id, safe='')}"


def _payload(state: str, filters: list[str], adopted: list[str] | None = None) -> bytes:
    body: dict[str, Any] = {"state": state, "filters": filters}
    if adopted is not None:
        body["adopted"] = sorted(adopted)
    return orjson.dumps(body)


def _parse(payload: bytes) -> dict[str, Any] | None:
    """A presence, or None (an empty retained message clears one; anything else unreadable)."""
    try:
        value = orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) and isinstance(value.get("state"), str) else None


class Lane(Protocol):
    """What a takeover uses of its :class:`plutino.io.mqtt_hub.Lane` (a Protocol, so that the
    two modules do not import each other)."""

    conn: Connection
    client: paho.Client
    sources: dict[str, list[Any]]

    def filters(self) -> list[str]: ...

    def route_miss(self, topic: bytes) -> Route: ...


def takeover_for(lane: Lane) -> Takeover | None:
    """The lane's takeover when all of its subscriptions are in one share group, else None."""
    groups = {split_share(f)[0] for f in lane.sources}
    if len(groups) == 1 and None not in groups:
        group = groups.pop()
        assert group is not None
        return Takeover(lane, group)
    if any(g is not None for g in groups):
        _log.info("mqtt: client %s subscribes %s: a dead member's session is taken over only on a persistent "
                  "connection whose subscriptions are all in one share group; give the shared stream a conf key "
                  "(clientid) of its own", lane.conn.client_id, sorted(lane.sources))
    return None


class PresenceRoute(Route):
    """The presence messages of one member: to :meth:`Takeover.heard` (acknowledged at once)."""

    __slots__ = ("member", "takeover")

    def __init__(self, takeover: Takeover, member: str, topic: str) -> None:
        super().__init__((), topic)
        self.takeover = takeover
        self.member = member

    def deliver(self, payloads: list[bytes]) -> None:
        for payload in payloads:
            self.takeover.heard(self.member, payload)

    def deliver_acked(self, payloads: list[bytes], entries: list[Any]) -> None:
        self.deliver(payloads)


class Takeover:
    """One lane's presence in its share group, and the dead members' sessions it holds."""

    def __init__(self, lane: Lane, group: str) -> None:
        self.lane = lane
        self.group = group
        self.me = lane.conn.client_id
        self.filter = presence_filter(group)
        self.topic = presence_topic(group, self.me)
        self._prefix = self.filter[:-1]
        self.members: dict[str, dict[str, Any]] = {}  # a peer's client id -> its last presence
        self.adoptions: dict[str, Adoption] = {}
        self.adopted_total = 0  # adoptions begun (for tests and logs)
        self._waits: dict[str, float] = {}
        self._not_before: dict[str, float] = {}
        self._warned: set[str] = set()
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self._closed = False
        lane.client.will_set(self.topic, _payload("gone", self._filters()), qos=1, retain=True)

    def _filters(self) -> list[str]:
        return self.lane.filters()

    # -- the lane calls these ---------------------------------------------------------------

    def route(self, topic: str) -> Route | None:
        if not topic.startswith(self._prefix):
            return None
        return PresenceRoute(self, unquote(topic[len(self._prefix):]), topic)

    def connected(self) -> None:
        """The lane (re)connected and subscribed (paho's thread)."""
        self.lane.client.subscribe(self.filter, 1)
        self.announce()
        self._schedule(ADOPT_DELAY_S)

    def changed(self) -> None:
        """A source came or went: say so (the filters), and look again."""
        if self.lane.client.is_connected():
            self.announce()
        self._schedule(ADOPT_DELAY_S)

    def forget_routes(self) -> None:
        for adoption in list(self.adoptions.values()):
            adoption.client.forget_routes()  # type: ignore[attr-defined]

    def announce(self) -> None:
        with self._lock:
            if self._closed:
                return
            adopted = list(self.adoptions)
        self.lane.client.publish(self.topic, _payload("alive", self._filters(), adopted), qos=1, retain=True)

    def close(self) -> None:
        """The lane closes: end the adoptions (what they did not acknowledge goes to whoever
        resumes those sessions), and say ``gone``, since this session stays a member too."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            adoptions = list(self.adoptions.values())
            self.adoptions.clear()
        for adoption in adoptions:
            adoption.stop()
        client = self.lane.client
        if client.is_connected():
            info = client.publish(self.topic, _payload("gone", self._filters()), qos=1, retain=True)
            try:
                info.wait_for_publish(SETTLE_S)
            except (RuntimeError, ValueError):  # not sent: the will says the same when the socket goes
                pass

    # -- what the members say (paho's thread) -------------------------------------------------

    def heard(self, member: str, payload: bytes) -> None:
        presence = _parse(payload)
        if member == self.me:
            # this session's own will or "gone", of an earlier connection: say alive again
            if (presence is None or presence.get("state") != "alive") and self.lane.client.is_connected():
                self.announce()
            return
        with self._lock:
            if presence is None:
                self.members.pop(member, None)
            else:
                self.members[member] = presence
        self._schedule(ADOPT_DELAY_S)

    def _schedule(self, delay: float) -> None:
        with self._lock:
            if self._closed:
                return
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(delay, self.evaluate)
            self._timer.daemon = True
            self._timer.start()

    def evaluate(self) -> None:
        """Adopt the orphans this member is the one to adopt (a timer's thread)."""
        if not self.lane.client.is_connected():
            return  # its reconnection looks again
        filters = set(self._filters())
        now = time.monotonic()
        start: list[str] = []
        with self._lock:
            if self._closed:
                return
            alive = {m for m, p in self.members.items() if p.get("state") == "alive"} | {self.me}
            if min(alive) != self.me:
                return
            held = {a for m in alive if m != self.me for a in _adopted(self.members[m])}
            later: float | None = None
            for peer, presence in sorted(self.members.items()):
                if peer in alive or peer in held or peer in self.adoptions:
                    continue
                problem = self._cannot(presence, filters)
                if problem is not None:
                    if peer not in self._warned:
                        self._warned.add(peer)
                        _log.warning("mqtt: %s does not take over the session of %s, a gone member of share group "
                                     "%r: %s", self.me, peer, self.group, problem)
                    continue
                due = self._not_before.get(peer, 0.0)
                if due > now:
                    later = due if later is None else min(later, due)
                    continue
                start.append(peer)
            if later is not None:
                self._schedule(later - now)
        for peer in start:
            self._adopt(peer)

    def _cannot(self, presence: dict[str, Any], filters: set[str]) -> str | None:
        theirs = presence.get("filters")
        if not isinstance(theirs, list) or not theirs or not all(isinstance(f, str) for f in theirs):
            return "its presence names no subscriptions"
        own = f"{SHARE_PREFIX}{self.group}/"
        plain = [f for f in theirs if not f.startswith(own)]
        if plain:
            return (f"it also subscribes {plain} outside the group, whose messages this host gets itself; "
                    "give the shared stream a conf key (clientid) of its own on every host")
        missing = sorted(set(theirs) - filters)
        if missing:
            return (f"it subscribes {missing}, which this host has no source of (their messages would be "
                    "acknowledged unread); deploy the same streams and rules to every member")
        return None

    def _adopt(self, peer: str) -> None:
        adoption = Adoption(self, peer)
        with self._lock:
            if self._closed or peer in self.adoptions:
                return
            self.adoptions[peer] = adoption
            self.adopted_total += 1
        _log.warning("mqtt: %s takes over the session of %s, a member of share group %r whose presence says it is "
                     "gone: its unacknowledged and queued messages and its share of new ones go to this host's "
                     "rules until it comes back", self.me, peer, self.group)
        adoption.start()
        self.announce()

    def ended(self, adoption: Adoption, why: str) -> None:
        """An adoption's connection ended without :meth:`Adoption.stop` (paho's thread)."""
        peer = adoption.peer
        now = time.monotonic()
        with self._lock:
            if self.adoptions.get(peer) is adoption:
                del self.adoptions[peer]
            wait = self._waits.get(peer)
            wait = RETRY_MIN_S if wait is None or now - adoption.began >= SHORT_S else min(wait * 2, RETRY_MAX_S)
            self._waits[peer] = wait
            self._not_before[peer] = now + wait
        _log.warning("mqtt: %s no longer holds the session of %s (after %.1f s: %s); not reconnecting with its "
                     "client id (the member may be back); looking again in %g s",
                     self.me, peer, now - adoption.began, why, wait)
        self.announce()
        self._schedule(wait)


def _adopted(presence: dict[str, Any]) -> list[str]:
    value = presence.get("adopted")
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


class Adoption:
    """A connection under a dead member's client id, resuming its session for a lane's sources."""

    def __init__(self, takeover: Takeover, peer: str) -> None:
        self.takeover = takeover
        self.peer = peer
        self.began = time.monotonic()
        self.acks = AckQueue()
        self._stopping = False
        self._ended = False
        self.conn = dataclasses.replace(takeover.lane.conn, client_id=peer)
        client = source_client(self.conn, self.route_miss, self.acks, reconnect_on_failure=False)
        if client is None:  # a paho without _FastClient's needs: no at-least-once path to feed
            client = self.conn.client(reconnect_on_failure=False)
            self._ended = True
        self.client: paho.Client = client
        self.acks.client = client
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail

    def start(self) -> None:
        if self._ended:
            self.takeover.ended(self, "this paho-mqtt cannot acknowledge messages once the rules wrote them")
            return
        self.conn.connect_async(self.client)
        self.client.loop_start()

    def route_miss(self, topic: bytes) -> Route:
        name = topic.decode("utf-8", "replace")
        if name.startswith(PRESENCE_ROOT + "/"):  # the peer's own presence subscription: not for the sources
            return Route((), name)
        return self.takeover.lane.route_miss(topic)

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.acks.reset()
        if reason.is_failure:
            self._end(f"the broker refused the connection: {reason}")
        elif not flags.session_present:
            # the session ended (expired): nothing to resume, and its presence is stale; clear it
            client.publish(presence_topic(self.takeover.group, self.peer), b"", qos=1, retain=True)
            self._end("the broker kept no session under that client id (it expired); its presence is cleared")
        else:
            _log.warning("mqtt: %s resumed the session of %s: its messages go to this host's rules",
                         self.takeover.me, self.peer)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.acks.reset()  # what it delivered unacknowledged goes again to whoever resumes the session
        self._end(f"the broker closed the connection ({reason})")

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        self._end("cannot connect to the broker")

    def _end(self, why: str) -> None:
        if self._ended:
            return
        self._ended = True
        if self._stopping:
            return
        threading.Thread(target=self._shut, name="mqtt-adoption-end", daemon=True).start()
        self.takeover.ended(self, why)

    def _shut(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def stop(self) -> None:
        """Close it (the lane closes): acknowledge what is done, leave the rest to the session."""
        self._stopping = True
        settle_acks(self.client)
        self.acks.client = None
        self._shut()


__all__ = ["ADOPT_DELAY_S", "PRESENCE_ROOT", "Adoption", "Takeover", "presence_filter", "presence_topic",
           "takeover_for"]
