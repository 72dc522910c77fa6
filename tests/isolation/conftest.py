"""Fixtures of the process-isolation tests: the hostile plugins, packed, and a real server
(``python -m plutino serve``) started with the data plane's settings in its environment.

The server runs with one pool worker (a culprit rule and the canary share it at first), a
2 s call deadline, a 3 s probe deadline and a 2 GiB address-space limit per worker. Its
stdout and stderr go to two files of their own, so a test can tell the server's log (stderr)
from anything printed on its stdout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.api_helpers import ServerProcess, subprocess_env
from helpers import wait_for
from plutino.packages.format import pack

#: The data plane's settings of every server these tests start.
SERVER_ENV = {
    "PLUTINO_WORKERS": "1",
    "PLUTINO_CALL_TIMEOUT": "2",
    "PLUTINO_PROBE_TIMEOUT": "3",
    "PLUTINO_WORKER_MEMORY": str(2 * 1024 ** 3),
}
#: Settings the tests rely on at their defaults: an inherited value must not change them.
DEFAULTED = ("PLUTINO_SPARE_WORKERS", "PLUTINO_QUARANTINE_CRASHES", "PLUTINO_QUARANTINE_WINDOW",
             "PLUTINO_PLUGIN_OUTPUT_RATE", "PLUTINO_TOKEN")
CALL_TIMEOUT_S = 2.0
PROBE_TIMEOUT_S = 3.0
#: The simulator streams: the canary's gets a row every INTERVAL_MS (CONF_KEY default), a
#: culprit's every CULPRIT_INTERVAL_MS (CONF_KEY="culprit"), so that its 3rd call comes a while
#: after the rule started.
INTERVAL_MS = 25
CULPRIT_INTERVAL_MS = 200
SIMULATOR_YAML = f"""\
default:
  interval: {INTERVAL_MS}
  loop: true
  data:
    - {{n: 1}}
    - {{n: 2}}
    - {{n: 3}}
culprit:
  interval: {CULPRIT_INTERVAL_MS}
"""

HOSTILE = ("h_segv_call", "h_abort", "h_exit0", "h_badptr", "h_loop_call", "h_alloc", "h_grow", "h_stdout",
           "h_segv_entry", "h_loop_entry", "h_segv_ctor", "h_segv_next", "h_loop_next", "h_loop_close",
           "h_segv_write")
KIND = {"h_segv_next": "source", "h_loop_next": "source", "h_loop_close": "source", "h_segv_write": "sink"}


def kind_of(name: str) -> str:
    return KIND.get(name, "function")


@pytest.fixture(scope="session")
def hostile(plugin_build: Path) -> Path:
    """The folder of the built hostile plugins: ``hostile / "h_segv_call.so"``."""
    folder = plugin_build / "hostile"
    missing = [n for n in HOSTILE if not (folder / f"{n}.so").is_file()]
    assert not missing, f"the build has no hostile plugins {missing} in {folder}"
    return folder


@pytest.fixture(scope="session")
def hostile_zips(hostile: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name -> installable package of each hostile plugin."""
    out = tmp_path_factory.mktemp("hostile-zips")
    zips = {}
    for name in HOSTILE:
        # A source package carries its default config; the corpus ships none (its sources ignore
        # it). The function names are given, so packing runs no plugin code (some crash or hang
        # when loaded).
        folder = out / name
        folder.mkdir()
        so = folder / f"{name}.so"
        shutil.copyfile(hostile / f"{name}.so", so)
        if kind_of(name) == "source":
            (folder / f"{name}.yaml").write_text("default: {}\n")
        functions = [name] if kind_of(name) == "function" else None
        zips[name] = pack(so, out / f"{name}.zip", functions=functions)
    return zips


class IsolationServer(ServerProcess):
    """:class:`ServerProcess` with the data plane's settings in its environment, and its
    stdout and stderr in files of their own (``stdout_log``, ``log``)."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(data_dir)
        self.env = {**SERVER_ENV, **(env or {})}
        self.stdout_log = data_dir.parent / f"{data_dir.name}-server.stdout"
        etc = data_dir / "etc" / "sources"
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "simulator.yaml").write_text(SIMULATOR_YAML)

    def _spawn(self, cmd: list[str]) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in subprocess_env(**self.env).items() if k not in DEFAULTED or k in self.env}
        with open(self.log, "ab") as err, open(self.stdout_log, "ab") as out:
            return subprocess.Popen(cmd, env=env, stdout=out, stderr=err, cwd=self.data_dir.parent)

    def timed_stop(self) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds until the process ended)."""
        began = time.monotonic()
        code = self.stop()
        return code, time.monotonic() - began

    # -- rules -----------------------------------------------------------------------------
    def status(self, rule_id: str) -> dict[str, Any]:
        r = self.get(f"/rules/{rule_id}/status")
        assert r.status_code == 200, r.text
        return r.json()

    def wait_status(self, rule_id: str, predicate: Callable[[dict[str, Any]], Any], what: str,
                    timeout: float = 30.0) -> dict[str, Any]:
        """Poll the rule's status until ``predicate`` holds; fail with the last status seen."""
        last: dict[str, Any] = {}

        def check() -> dict[str, Any] | None:
            nonlocal last
            last = self.status(rule_id)
            return last if predicate(last) else None

        try:
            return wait_for(check, what, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the last status of {rule_id}: {json.dumps(last)}\n"
                                 f"server log (end):\n{self.output()[-4000:]}") from None

    def create_stream(self, sql: str) -> None:
        r = self.post("/streams", json={"sql": sql})
        assert r.status_code == 201, r.text

    def create_rule(self, rule_id: str, sql: str, actions: list[dict[str, Any]], **options: Any) -> None:
        body: dict[str, Any] = {"id": rule_id, "sql": sql, "actions": actions}
        if options:
            body["options"] = options
        r = self.post("/rules", json=body)
        assert r.status_code == 201, r.text

    def install(self, name: str, package: Path) -> httpx.Response:
        return self.post(f"/plugins/{kind_of(name)}s", json={"name": name, "file": package.as_uri()})


@pytest.fixture
def server(tmp_path: Path) -> Iterator[IsolationServer]:
    """A real server on a fresh data dir; stopped (SIGTERM) at the end of the test if it still runs."""
    proc = IsolationServer(tmp_path / "data")
    yield proc.start()
    if proc.proc is not None:
        proc.stop()


# -- the canary ------------------------------------------------------------------------------
class Canary:
    """A rule over the built-in simulator that writes ``tstamp()`` (ms, taken in the worker
    when the row passes) with each row to a file, through the built-in file sink."""

    STREAM = "canary_s"
    RULE = "canary"

    def __init__(self, server: IsolationServer, out: Path) -> None:
        self.server = server
        self.out = out

    def create(self) -> Canary:
        self.server.create_stream(f'CREATE STREAM {self.STREAM} () WITH (TYPE="simulator")')
        self.server.create_rule(self.RULE, f"SELECT tstamp() AS ts, n FROM {self.STREAM}",
                                [{"file": {"path": str(self.out)}}])
        wait_for(lambda: len(self.stamps()) >= 5, "the canary to write rows")
        return self

    def stamps(self) -> list[int]:
        """The ``ts`` of every complete row written so far, in file order."""
        if not self.out.exists():
            return []
        out = []
        for line in self.out.read_bytes().split(b"\n"):
            try:
                out.append(json.loads(line)["ts"])
            except (ValueError, KeyError):
                continue  # an empty or partly written line
        return out

    def max_gap_s(self, since_ms: int = 0) -> tuple[float, int]:
        """The longest gap between two consecutive rows (seconds), and where (ms) it began."""
        stamps = [t for t in self.stamps() if t >= since_ms]
        gaps = [(b - a, a) for a, b in zip(stamps, stamps[1:])]
        gap, at = max(gaps, default=(0, 0))
        return gap / 1000, at

    def writes_after(self, ms: int) -> bool:
        return any(t > ms for t in self.stamps())


# -- /ping, all along -----------------------------------------------------------------------
#: Every /ping is to answer within PING_TARGET_S. The tests run on small shared machines (2 CPUs,
#: other test sessions beside them), where the scheduler alone now and then delays one answer
#: past 100 ms: a margin of PING_SLOW_ALLOWED pings over the target is allowed, none over
#: PING_LIMIT_S. A server that waits on plugin code shows up anyway: a call's deadline is 2 s.
PING_TARGET_S = 0.1
PING_SLOW_ALLOWED = 2
PING_LIMIT_S = 0.5


class PingWatch:
    """Pings ``/ping`` every 50 ms on a thread of its own; keeps each answer's latency."""

    def __init__(self, url: str, every_s: float = 0.05) -> None:
        self.url = url
        self.every_s = every_s
        self.latencies: list[tuple[float, float]] = []  # (wall-clock time sent, seconds)
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ping-watch", daemon=True)

    def __enter__(self) -> PingWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        deadline = time.monotonic() + 5  # a watch always sees a few pings, however quick its body was
        while len(self.latencies) + len(self.failures) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self._stop.is_set():
                began, wall = time.monotonic(), time.time()
                try:
                    r = client.get("/ping")
                    took = time.monotonic() - began
                    if r.status_code != 200:
                        self.failures.append(f"/ping answered {r.status_code}: {r.text[:200]}")
                    self.latencies.append((wall, took))
                except httpx.HTTPError as exc:
                    self.failures.append(f"/ping failed after {time.monotonic() - began:.3f} s: {exc!r}")
                self._stop.wait(max(0.0, self.every_s - (time.monotonic() - began)))

    def assert_responsive(self) -> None:
        slow = [t for _, t in self.latencies if t >= PING_TARGET_S]
        assert self.latencies and not self.failures, self.summary()
        assert len(slow) <= PING_SLOW_ALLOWED and self.worst < PING_LIMIT_S, self.summary()

    @property
    def worst(self) -> float:
        return max((t for _, t in self.latencies), default=0.0)

    def summary(self) -> str:
        """The slowest pings with the time they were sent (as the server log writes times)."""
        slow = sorted(self.latencies, key=lambda p: p[1], reverse=True)[:5]
        shown = ", ".join(f"{took * 1000:.0f} ms at {_clock(when)}" for when, took in slow)
        return (f"{len(self.latencies)} pings, worst {self.worst * 1000:.0f} ms; slowest: {shown}; "
                f"failures {self.failures[:3]}")


def _clock(when: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when)) + f",{int(when % 1 * 1000):03d}"
