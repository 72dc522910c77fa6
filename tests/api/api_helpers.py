"""Helpers the API tests import: a real server in a child process, bounded polling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from helpers import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
#: The plugins the API tests install, as (kind, name).
PLUGINS = [("source", "random"), ("sink", "file"), ("function", "echo"), ("function", "fastmath")]
KIND_OF = {name: kind for kind, name in PLUGINS}
WAIT_S = 30.0


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a child Python that imports this tree's plutino and contract."""
    paths = [str(REPO / "host"), str(REPO / "contract")]
    env = {k: v for k, v in os.environ.items() if k not in ("PLUTINO_HOME", "PLUTINO_URL", "PLUTINO_PORT")}
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(extra)
    return env


class ServerProcess:
    """``python -m plutino serve`` on a free loopback port over ``data_dir``."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None,
                 ready_timeout: float = 30.0) -> None:
        self.data_dir = data_dir
        self.args = args
        self.env = dict(env or {})  # extra environment of the server process
        self.ready_timeout = ready_timeout
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.http: httpx.Client | None = None
        self.log = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        self.port = free_port()
        self.proc = self._spawn([sys.executable, "-m", "plutino", "serve", "--port", str(self.port),
                                 "--data-dir", str(self.data_dir), *self.args])
        self.http = httpx.Client(base_url=self.url, timeout=self.ready_timeout)
        try:
            wait_for(self._ready, f"the server on port {self.port} to answer /ping", self.ready_timeout)
        except BaseException:
            self.stop(signal.SIGKILL)
            raise
        return self

    def _spawn(self, cmd: list[str]) -> subprocess.Popen[bytes]:
        """Start the server process (its stdout and stderr into the log)."""
        with open(self.log, "ab") as log:
            return subprocess.Popen(cmd, env=subprocess_env(**self.env), stdout=log, stderr=subprocess.STDOUT,
                                    cwd=self.data_dir.parent)

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the server exited with {self.proc.returncode}:\n{self.output()}")
        try:
            return self.http.get("/ping").status_code == 200  # type: ignore[union-attr]
        except httpx.TransportError:
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the server and wait for it to exit; return its exit code."""
        if self.http is not None:
            self.http.close()
            self.http = None
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the server did not stop within {WAIT_S:g} s:\n{self.output()}") from None
        self.proc = None
        return code

    def __getattr__(self, method: str) -> Any:
        """``server.get(path)``, ``server.post(path, json=...)``, ...: httpx calls on the server."""
        if method in ("get", "post", "put", "delete"):
            assert self.http is not None, "the server is not running"
            return getattr(self.http, method)
        raise AttributeError(method)


def install(client: Any, packages: dict[str, Path], *names: str) -> None:
    """Install packed plugins through ``POST /plugins/{kind}s`` with file:// URLs."""
    for name in names:
        r = client.post(f"/plugins/{KIND_OF[name]}s", json={"name": name, "file": packages[name].as_uri()})
        assert r.status_code == 201, r.text


def io_helpers() -> Any:
    """tests/io's iohelpers (a real mosquitto, an MQTT test client), imported by path: a package
    named "io" would be the standard library's."""
    import importlib.util

    path = REPO / "tests" / "io" / "iohelpers.py"
    spec = importlib.util.spec_from_file_location("io_iohelpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mqtt_server(data: Path, broker: Any) -> ServerProcess:
    """A started server whose built-in mqtt source connects to ``broker`` by default."""
    (data / "etc" / "sources").mkdir(parents=True)
    (data / "etc" / "sources" / "mqtt.yaml").write_text(f"default:\n  server: {broker.url}\n  qos: 1\n")
    return ServerProcess(data).start()
