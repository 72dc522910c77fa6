"""Who owns a data directory: the server that serves it holds ``server.lock`` in it.

``plutino serve`` takes an exclusive ``flock`` on ``DATA_DIR/server.lock`` and writes its URL
into the file (:meth:`ServerLock.take`). The kernel lets go of the lock when the process ends,
however it ends, so a lock is never stale; the URL is read only while the lock is held.

A command that changes a data directory without the server (``plutino plugin install`` with
``--data-dir``) holds a shared lock on the same file while it works (:func:`offline_change`).
It is refused at once while a server holds the directory, since the server would not see the
change until it restarts (:class:`DataDirServed` names the server, so the command can be sent
to it instead); a server that starts meanwhile waits for the command to end. A second server
on the same directory is refused, naming the first.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from plutino.errors import PlutinoError

log = logging.getLogger("plutino.host")

LOCK_NAME = "server.lock"
#: How long a starting server waits for an offline command to finish with its data directory.
OFFLINE_WAIT_S = 60.0


class DataDirServed(PlutinoError):
    """The data directory is served by a running server, at ``url``."""

    def __init__(self, root: Path, url: str, message: str | None = None) -> None:
        self.root = root
        self.url = url
        super().__init__(message or f"the data dir {root} is served by the Plutino server at {url}; change it through"
                                    " that server (its REST API), which would not see a change made here until it"
                                    " restarts")


class ServerLock:
    """The exclusive lock of the server that serves a data directory."""

    def __init__(self, fd: int, root: Path) -> None:
        self._fd: int | None = fd
        self.root = root

    @classmethod
    def take(cls, root: Path, url: str, wait_s: float = OFFLINE_WAIT_S) -> ServerLock:
        """Lock ``root`` for the server reached at ``url``: refused (:class:`DataDirServed`)
        while another server holds it; waits up to ``wait_s`` for offline commands to end."""
        fd = _open(root)
        deadline = time.monotonic() + wait_s
        waiting = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    other = _server_holding(fd)
                    if other is not None:
                        raise DataDirServed(root, other, (
                            f"cannot serve the data dir {root}: the Plutino server at {other} serves it; stop that"
                            " server, or give this one another --data-dir (or PLUTINO_HOME)")) from None
                if time.monotonic() > deadline:
                    raise PlutinoError(f"cannot serve the data dir {root}: a plutino command has been changing it"
                                       f" without a server for {wait_s:g} s (plutino plugin install|update|delete|"
                                       "trust|untrust --data-dir); let it finish, then start the server again")
                if not waiting:
                    log.info("waiting for a plutino command that changes %s without a server to finish", root)
                    waiting = True
                time.sleep(0.1)
            os.ftruncate(fd, 0)
            os.pwrite(fd, url.encode("utf-8"), 0)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, root)

    def release(self) -> None:
        """Let go of the data directory (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the only descriptor releases the lock


@contextmanager
def offline_change(root: Path) -> Iterator[None]:
    """Hold ``root`` for a change made without a server; :class:`DataDirServed` when a server
    holds it."""
    fd = _open(root)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirServed(root, _url_in(fd)) from None
        yield
    finally:
        os.close(fd)


def _open(root: Path) -> int:
    root.mkdir(parents=True, exist_ok=True)
    return os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def _server_holding(fd: int) -> str | None:
    """The URL of the server that holds the lock exclusively, or None when only offline
    commands hold it (shared) or nobody does any more."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _url_in(fd)
    fcntl.flock(fd, fcntl.LOCK_UN)
    return None


def _url_in(fd: int) -> str:
    text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    return text or "(a server that is starting)"


__all__ = ["LOCK_NAME", "DataDirServed", "ServerLock", "offline_change"]
