"""A host killed outright (SIGKILL: no chance to hang up) leaves no worker behind."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from helpers import wait_for

from .conftest import Canary, IsolationServer


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (not reaped yet by its new parent) is gone for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_the_workers_of_a_killed_host_end_by_themselves(server: IsolationServer, tmp_path: Path) -> None:
    Canary(server, tmp_path / "canary.jsonl").create()
    worker = server.status(Canary.RULE)["worker"]  # "w1 (pid 123, pool)"
    pid = int(worker.split("pid ")[1].split(",")[0])
    assert _alive(pid)
    server.stop(signal.SIGKILL)
    wait_for(lambda: not _alive(pid), f"worker pid {pid} to end after its host was killed", timeout=15)
