"""The call board: a worker's plugin calls, in shared memory its supervisor reads.

Each thread of a worker that calls into plugins owns one slot of the board. Before a call it
writes the call's site, since when, and its deadline; after, that the call returned and when.
Nothing is sent anywhere: the supervisor reads the board when it wants to know, which is
every few tens of milliseconds (a call past its deadline gets the worker killed) and once
more after the worker died (the slot still "in a call" names the culprit, even when the
worker died by a signal or by ``exit(0)`` inside the plugin).

Layout of the file (little-endian), fixed for the life of a worker::

    header   magic u32, version u32, slots u32 (the high-water mark of slots in use), strings_end u32
    slots    SLOTS x (site u32, state u32, ended f64, since f64, deadline f64)
    strings  records of (length u16, utf-8 "rule\\x1fplugin\\x1fcall"); a site is its offset

Times are CLOCK_MONOTONIC seconds, the same in every process of the machine. A slot is
written with one ``pack_into`` while the writer holds the GIL; the reader reads it twice and
keeps it only when both reads agree, so a torn read is skipped, never misread.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import time
from dataclasses import dataclass
from typing import Callable

from plutino.native.watch import CallNotes

MAGIC = 0x42434C50  # "PLCB"
VERSION = 1
SLOTS = 1024
_HEADER = struct.Struct("<IIII")
_SLOT = struct.Struct("<IIddd")
_ENTER = struct.Struct("<II8xdd")  # site, state, (ended: cleared), since, deadline
_LEAVE = struct.Struct("<Id")  # state, ended (at offset 4)
_IDLE = struct.Struct("<I")
_LEN = struct.Struct("<H")
STRINGS_AT = _HEADER.size + SLOTS * _SLOT.size
SIZE = 1 << 20
IDLE, IN_CALL, RETURNED = 0, 1, 2
_monotonic = time.monotonic
_pack_enter = _ENTER.pack_into
_pack_leave = _LEAVE.pack_into


@dataclass(frozen=True)
class Note:
    """One slot as the supervisor reads it."""

    rule: str
    plugin: str
    call: str
    state: int
    since: float
    deadline: float
    ended: float

    def describe(self) -> str:
        """``plugin 'p' (source next, rule r)``"""
        rule = f", rule {self.rule}" if self.rule else ""
        return f"plugin '{self.plugin}' ({self.call}{rule})"


def create_board(path: str) -> None:
    """Make an empty board file for a worker about to start."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, SIZE)
        os.pwrite(fd, _HEADER.pack(MAGIC, VERSION, 0, STRINGS_AT), 0)
    finally:
        os.close(fd)


def _open(path: str, write: bool) -> mmap.mmap:
    fd = os.open(path, os.O_RDWR if write else os.O_RDONLY)
    try:
        return mmap.mmap(fd, SIZE, access=mmap.ACCESS_WRITE if write else mmap.ACCESS_READ)
    finally:
        os.close(fd)


class _Lease:
    """A thread's hold on its slot; the slot is freed when the thread's locals go."""

    __slots__ = ("slot", "_free")

    def __init__(self, slot: int, free: Callable[[int], None]) -> None:
        self.slot = slot
        self._free = free

    def __del__(self) -> None:
        self._free(self.slot)


class BoardWriter(CallNotes):
    """The worker's side: :class:`~plutino.native.watch.CallNotes` written to the board."""

    def __init__(self, path: str, default_timeout_s: float) -> None:
        self._mm = _open(path, write=True)
        self._default = default_timeout_s
        self._timeouts: dict[str, float] = {}
        self._sites: dict[tuple[str, str, str], int] = {}
        self._site_timeout: dict[int, float] = {}
        self._end = STRINGS_AT
        self._used = 0
        self._free = list(range(SLOTS - 1, -1, -1))
        self._lock = threading.Lock()
        self._local = threading.local()

    def set_timeout(self, rule_id: str, seconds: float | None) -> None:
        """The deadline of every call made for ``rule_id`` from now on (None: the default)."""
        if seconds is None:
            self._timeouts.pop(rule_id, None)
        else:
            self._timeouts[rule_id] = seconds

    def site(self, rule_id: str, plugin: str, call: str) -> int:
        key = (rule_id, plugin, call)
        found = self._sites.get(key)
        if found is not None:
            return found
        data = "\x1f".join(key).encode("utf-8", "replace")[:1000]
        with self._lock:
            found = self._sites.get(key)
            if found is not None:
                return found
            at = self._end
            if at + _LEN.size + len(data) > SIZE:
                at, data = STRINGS_AT, b""  # full (a process that registered ~20k sites): anonymous
            else:
                self._mm[at + _LEN.size:at + _LEN.size + len(data)] = data
                _LEN.pack_into(self._mm, at, len(data))
                self._end = at + _LEN.size + len(data)
                _HEADER.pack_into(self._mm, 0, MAGIC, VERSION, self._used, self._end)
            self._sites[key] = at
            self._site_timeout[at] = self._timeouts.get(rule_id, self._default)
            return at

    def _claim(self) -> int:
        with self._lock:
            slot = self._free.pop() if self._free else SLOTS - 1  # beyond 1024 threads: shared
            if slot >= self._used:
                self._used = slot + 1
                _HEADER.pack_into(self._mm, 0, MAGIC, VERSION, self._used, self._end)
        self._local.lease = _Lease(slot, self._release)
        off = self._local.off = _HEADER.size + slot * _SLOT.size
        return off

    def _release(self, slot: int) -> None:
        try:
            _IDLE.pack_into(self._mm, _HEADER.size + slot * _SLOT.size + 4, IDLE)
            with self._lock:
                self._free.append(slot)
        except (ValueError, TypeError):  # the board is closed: the process is ending
            pass

    def enter(self, site: int, extra_s: float = 0.0) -> None:
        try:
            off = self._local.off
        except AttributeError:
            off = self._claim()
        now = _monotonic()
        _pack_enter(self._mm, off, site, IN_CALL, now, now + self._site_timeout.get(site, self._default) + extra_s)

    def leave(self) -> None:
        _pack_leave(self._mm, self._local.off + 4, RETURNED, _monotonic())


class BoardReader:
    """The supervisor's side: what each slot of a worker's board says."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._mm = _open(path, write=False)

    def close(self) -> None:
        self._mm.close()

    def _site(self, at: int) -> tuple[str, str, str]:
        if not STRINGS_AT <= at < SIZE - _LEN.size:
            return ("", "?", "?")
        (n,) = _LEN.unpack_from(self._mm, at)
        parts = bytes(self._mm[at + _LEN.size:at + _LEN.size + n]).decode("utf-8", "replace").split("\x1f")
        parts += ["", "?", "?"][len(parts):]
        return (parts[0], parts[1], parts[2])

    def notes(self) -> list[Note]:
        """Every slot that is in a call or has returned from one."""
        used = min(SLOTS, _HEADER.unpack_from(self._mm, 0)[2])
        end = _HEADER.size + used * _SLOT.size
        raw = self._mm[_HEADER.size:end]
        again = self._mm[_HEADER.size:end]
        out = []
        for i, (site, state, ended, since, deadline) in enumerate(_SLOT.iter_unpack(raw)):
            if state == IDLE or site == 0:
                continue
            if again[i * _SLOT.size:(i + 1) * _SLOT.size] != raw[i * _SLOT.size:(i + 1) * _SLOT.size]:
                continue  # written while read: the next look will see it
            rule, plugin, call = self._site(site)
            out.append(Note(rule, plugin, call, state, since, deadline, ended))
        return out

    def in_calls(self) -> list[Note]:
        return [n for n in self.notes() if n.state == IN_CALL]

    def overdue(self, now: float | None = None) -> Note | None:
        """The call most past its deadline, if any is."""
        now = time.monotonic() if now is None else now
        late = [n for n in self.in_calls() if n.deadline and n.deadline < now]
        return min(late, key=lambda n: n.deadline) if late else None

    def last_returned(self) -> Note | None:
        done = [n for n in self.notes() if n.state == RETURNED]
        return max(done, key=lambda n: n.ended) if done else None


__all__ = ["BoardReader", "BoardWriter", "Note", "create_board"]
