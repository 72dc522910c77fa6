"""The control protocol between the supervisor and a worker: requests, replies and events.

Only control crosses: start, stop, status, metrics, errors, log records. Data never does
(a rule's batches go from its source to its sinks inside one worker). Messages are pickled
tuples over a socket pair (:class:`multiprocessing.connection.Connection`):

    ("req", id, op, kwargs)      supervisor -> worker: run ``op``; every request is answered
    ("rep", id, ok, value)       worker -> supervisor: the value, or the error (see below)
    ("evt", name, payload)       worker -> supervisor: something happened (a log record, a
                                 rule that stopped by itself, a worker that is ready)

An error crosses as (module, class name, message, pickled exception or None) and is raised
again on the supervisor's side as the same class, so the REST layer answers a rule's
SqlError from a worker exactly as it did in-process.
"""

from __future__ import annotations

import importlib
import pickle
import threading
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any, Callable

from plutino.errors import PlutinoError


class WorkerGone(PlutinoError):
    """The worker died (or was killed) before it answered."""


def encode_error(exc: BaseException) -> tuple[str, str, str, bytes | None]:
    cls = type(exc)
    blob: bytes | None
    try:
        blob = pickle.dumps(exc)
        pickle.loads(blob)
    except Exception:
        blob = None
    message = str(exc) if isinstance(exc, PlutinoError) else f"{cls.__name__}: {exc}"
    return (cls.__module__, cls.__qualname__, message, blob)


def decode_error(data: tuple[str, str, str, bytes | None]) -> BaseException:
    module, name, message, blob = data
    if blob is not None:
        try:
            exc = pickle.loads(blob)
            if isinstance(exc, BaseException):
                return exc
        except Exception:
            pass
    try:
        cls = getattr(importlib.import_module(module), name)
        if isinstance(cls, type) and issubclass(cls, PlutinoError):
            exc = cls.__new__(cls)
            Exception.__init__(exc, message)
            exc.message = message
            return exc
    except Exception:
        pass
    return PlutinoError(message)


class Channel:
    """One end of a connection: thread-safe sends, and (on the supervisor's side) requests
    answered through futures."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._send_lock = threading.Lock()
        self._pending: dict[int, Future[Any]] = {}
        self._next = 0
        self._lock = threading.Lock()
        self.closed = False

    def send(self, message: tuple[Any, ...]) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with self._send_lock:
            self.conn.send_bytes(data)

    def recv(self) -> tuple[Any, ...]:
        return pickle.loads(self.conn.recv_bytes())

    # -- the supervisor's side ----------------------------------------------------------
    def request(self, op: str, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self.closed:
                future.set_exception(WorkerGone("the worker is gone"))
                return future
            self._next += 1
            rid = self._next
            self._pending[rid] = future
        try:
            self.send(("req", rid, op, kwargs))
        except (OSError, ValueError) as exc:
            with self._lock:
                mine = self._pending.pop(rid, None)
            if mine is not None and not mine.done():  # else fail_all() got there first
                mine.set_exception(WorkerGone(f"the worker is gone ({exc})"))
        return future

    def answered(self, rid: int, ok: bool, value: Any) -> None:
        with self._lock:
            future = self._pending.pop(rid, None)
        if future is None:
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(decode_error(value))

    def fail_all(self, exc: BaseException) -> None:
        """The worker died: every request still waiting gets ``exc``."""
        with self._lock:
            self.closed = True
            pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(exc)

    def dispatch(self, on_event: Callable[[str, Any], None]) -> None:
        """Read until the connection closes: replies resolve futures, events go to ``on_event``."""
        while True:
            try:
                message = self.recv()
            except (EOFError, OSError, TypeError):  # TypeError: closed while reading
                return
            if message[0] == "rep":
                self.answered(message[1], message[2], message[3])
            elif message[0] == "evt":
                on_event(message[1], message[2])


__all__ = ["Channel", "WorkerGone", "decode_error", "encode_error"]
