"""Bounded pools for the API's slow work, so that cheap requests always find a thread.

FastAPI runs a route written as a plain function on a thread of one pool (anyio's, 40
threads). Some requests hold their thread for long: ``POST /query`` up to its ``timeout``, a
rule's ``DELETE`` while the rule drains (up to its ``drainTimeout``), a plugin install while it
downloads. Forty-five such requests took every thread, and ``/ping`` and every read waited
behind them.

Each kind of slow work has a pool of its own (:data:`POOLS`): at most ``size`` requests of the
kind run at once. A request that finds its pool full waits for a slot on the event loop,
holding no thread, for up to :data:`WAIT_S`; then, or at once when ``4 * size`` requests already
wait, it is answered ``503 Service Unavailable`` with ``Retry-After``. The thread pool is
enlarged to hold every pool at once plus :data:`RESERVED_THREADS` threads that only other
requests can take, so reads, ``/ping`` (answered on the event loop) and stream changes
answer at once however busy the slow kinds are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import anyio
import anyio.to_thread

#: How long a request waits for a slot in its pool before it is answered 503, in seconds.
WAIT_S = 5.0
#: Threads kept for the requests of no pool (reads, stream changes, conf keys, ...).
RESERVED_THREADS = 40
#: At most this many requests per slot wait for one; more are answered 503 at once.
QUEUE_PER_SLOT = 4

_WRITES = frozenset({"POST", "PUT", "DELETE", "PATCH"})


@dataclass(frozen=True)
class Pool:
    """One kind of slow work: the requests it takes, and how many of them run at once."""

    name: str
    size: int
    what: str  # for messages: "queries (POST /query)"
    takes: Callable[[str, str], bool]  # (method, path) -> whether the request is of this kind


def _under(prefix: str) -> Callable[[str, str], bool]:
    return lambda method, path: method in _WRITES and (path == prefix or path.startswith(prefix + "/"))


#: The pools, first match wins.
POOLS: tuple[Pool, ...] = (
    Pool("query", 16, "queries (POST /query)", lambda method, path: method == "POST" and path == "/query"),
    Pool("rules", 16, "rule changes (POST, PUT, DELETE under /rules)", _under("/rules")),
    Pool("plugins", 8, "plugin installs, updates and deletes (under /plugins)", _under("/plugins")),
    Pool("import", 2, "imports (POST /data/import, /ruleset/import)",
         lambda method, path: method == "POST" and path in ("/data/import", "/ruleset/import")),
)


class _Slots:
    """A pool's state on the event loop: its semaphore and how many wait."""

    def __init__(self, size: int) -> None:
        self.semaphore = anyio.Semaphore(size)
        self.waiting = 0


class WorkPools:
    """ASGI middleware: admits each request of a slow kind into its pool, or answers 503."""

    def __init__(self, app: Any, pools: tuple[Pool, ...] = POOLS, wait_s: float = WAIT_S) -> None:
        self.app = app
        self.pools = pools
        self.wait_s = wait_s
        self._slots: dict[str, _Slots] = {}
        self._threads_set = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        pool = self._pool_of(scope) if scope["type"] == "http" else None
        if pool is None:
            await self.app(scope, receive, send)
            return
        if not self._threads_set:  # the default limiter belongs to the running event loop
            limiter = anyio.to_thread.current_default_thread_limiter()
            limiter.total_tokens = max(limiter.total_tokens, RESERVED_THREADS + sum(p.size for p in self.pools))
            self._threads_set = True
        slots = self._slots.get(pool.name)
        if slots is None:
            slots = self._slots[pool.name] = _Slots(pool.size)
        admitted = False
        detail = f"and {slots.waiting} more wait for a slot"
        if slots.waiting < QUEUE_PER_SLOT * pool.size:
            detail = f"and none finished within {self.wait_s:g} s"
            slots.waiting += 1
            try:
                with anyio.move_on_after(self.wait_s):
                    await slots.semaphore.acquire()
                    admitted = True
            finally:
                slots.waiting -= 1
        if not admitted:
            await _busy(send, pool, detail, self.wait_s)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            slots.semaphore.release()

    def _pool_of(self, scope: dict[str, Any]) -> Pool | None:
        method, path = scope["method"], scope["path"]
        return next((p for p in self.pools if p.takes(method, path)), None)


async def _busy(send: Any, pool: Pool, detail: str, wait_s: float) -> None:
    retry = max(1, round(wait_s))
    message = (f"the server is busy: {pool.size} {pool.what} are running, the most it runs at once, {detail};"
               f" retry in {retry} s (Retry-After)")
    body = json.dumps({"error": 1000, "message": message, "type": "Busy"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"retry-after", str(retry).encode())]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["POOLS", "Pool", "QUEUE_PER_SLOT", "RESERVED_THREADS", "WAIT_S", "WorkPools"]
