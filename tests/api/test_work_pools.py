"""The API's pools of slow work (plutino.api.work_pools) in front of a small real app: a
full pool answers 503 with Retry-After after its wait, at once when its queue is full, and
requests of no pool pass meanwhile. Over a real server: tests/api/test_bad_input.py."""

from __future__ import annotations

import asyncio
import threading

import httpx
from fastapi import FastAPI

from plutino.api.work_pools import POOLS, QUEUE_PER_SLOT, Pool, WorkPools

SLOW = Pool("slow", 1, "slow things (POST /slow)", lambda method, path: method == "POST" and path == "/slow")


def _app(gate: threading.Event) -> WorkPools:
    app = FastAPI()

    @app.post("/slow")
    def slow() -> dict:
        gate.wait(10)
        return {"done": True}

    @app.get("/read")
    def read() -> dict:
        return {"read": True}

    return WorkPools(app, pools=(SLOW,), wait_s=0.2)


async def _scenario() -> tuple[list[httpx.Response], httpx.Response, httpx.Response]:
    gate = threading.Event()
    transport = httpx.ASGITransport(app=_app(gate))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=10) as client:
        first = asyncio.create_task(client.post("/slow"))
        await asyncio.sleep(0.05)
        waiting = [asyncio.create_task(client.post("/slow")) for _ in range(QUEUE_PER_SLOT)]
        await asyncio.sleep(0.05)
        overflow = await client.post("/slow")  # the queue is full: refused at once
        read = await client.get("/read")  # no pool: answered while the pool is full
        refused = await asyncio.gather(*waiting)
        gate.set()
        return [await first, *refused], overflow, read


def test_a_full_pool_answers_503_with_retry_after_and_other_requests_pass():
    (first, *waited), overflow, read = asyncio.run(_scenario())
    assert (first.status_code, first.json()) == (200, {"done": True})
    assert (read.status_code, read.json()) == (200, {"read": True})
    for answer in waited:
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        assert answer.json() == {"error": 1000, "type": "Busy", "message": (
            "the server is busy: 1 slow things (POST /slow) are running, the most it runs at once, and none finished"
            " within 0.2 s; retry in 1 s (Retry-After)")}
    assert overflow.status_code == 503
    assert overflow.json()["message"] == (
        f"the server is busy: 1 slow things (POST /slow) are running, the most it runs at once, and"
        f" {QUEUE_PER_SLOT} more wait for a slot; retry in 1 s (Retry-After)")


def test_the_pools_take_the_slow_requests_and_leave_the_reads():
    def pool(method: str, path: str) -> str | None:
        return next((p.name for p in POOLS if p.takes(method, path)), None)

    assert pool("POST", "/query") == "query"
    assert [pool(m, p) for m, p in [("POST", "/rules"), ("DELETE", "/rules/r1"), ("POST", "/rules/r1/stop"),
                                    ("PUT", "/rules/r1")]] == ["rules"] * 4
    assert pool("POST", "/plugins/functions") == pool("DELETE", "/plugins/sinks/file") == "plugins"
    assert pool("POST", "/data/import") == pool("POST", "/ruleset/import") == "import"
    assert [pool(m, p) for m, p in [("GET", "/rules"), ("GET", "/rules/r1/status"), ("GET", "/ping"),
                                    ("POST", "/streams"), ("GET", "/plugins/functions"), ("POST", "/rulesx")]] == [
        None] * 6
