"""Call notes: which plugin call each thread is in, written where someone outside can read it.

Native code cannot be interrupted from Python, and a crash in it ends the process before any
Python runs again. So the adapters note every call into a plugin *before* making it: the
site (rule, plugin, call) and since when, and *after* it returns: that it did. A process
that hosts plugin code for others (a worker of the data plane) installs a :class:`CallNotes`
that writes these notes to shared memory, where its supervisor reads them to name the
culprit of a crash and to enforce each call's deadline. Elsewhere (a script, a test) the
notes are the no-op below, which costs one method call per plugin call.

A site is registered once per instance and call (``site()``) and noted per call by its
number, so a note is a few stores, not string formatting.
"""

from __future__ import annotations


class CallNotes:
    """Notes that go nowhere (the default, for in-process use)."""

    def site(self, rule_id: str, plugin: str, call: str) -> int:
        """A number for (rule, plugin, call), stable for the life of the process."""
        return 0

    def enter(self, site: int, extra_s: float = 0.0) -> None:
        """The calling thread is about to call into a plugin at ``site``; its deadline is
        the site's timeout plus ``extra_s`` (a source's own ``next`` timeout)."""

    def leave(self) -> None:
        """The calling thread's plugin call returned."""


_current = CallNotes()


def current() -> CallNotes:
    """The notes of this process (adapters take them when an instance is created)."""
    return _current


def install(notes: CallNotes) -> None:
    """Make ``notes`` the notes of this process, for instances created from now on."""
    global _current
    _current = notes


class noted:
    """``with noted(rule_id, plugin, call): <one plugin call>`` for calls off the hot path."""

    __slots__ = ("_notes", "_site")

    def __init__(self, rule_id: str, plugin: str, call: str) -> None:
        self._notes = _current
        self._site = self._notes.site(rule_id, plugin, call)

    def __enter__(self) -> None:
        self._notes.enter(self._site)

    def __exit__(self, *exc: object) -> None:
        self._notes.leave()


__all__ = ["CallNotes", "current", "install", "noted"]
