"""Fixtures of the API tests: packed plugins, an in-process Host with its app, a real server.

In-process tests drive the FastAPI app with TestClient over a real Host on a temporary data
dir; process tests start ``python -m plutino serve`` and speak HTTP to it (api_helpers).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette's note about httpx2 concerns TestClient's transport only
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from plutino.api import create_app
from plutino.host import Host
from plutino.packages.format import pack

from .api_helpers import PLUGINS, ServerProcess


@pytest.fixture(scope="session")
def packages(plugin_build: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name -> package zip, packed with plutino.packages.format.pack from the test build."""
    out = tmp_path_factory.mktemp("packages")
    return {name: pack(plugin_build / f"{kind}s" / f"{name}.so", out / f"{name}.zip") for kind, name in PLUGINS}


@pytest.fixture(scope="session")
def echo_v2(plugin_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package of echo rebuilt as version 1.1.0 (same code, new ABI tag), for updates."""
    from plutino.packages.scaffold import build_project

    from .api_helpers import REPO

    work = tmp_path_factory.mktemp("echo-v2")
    source = REPO / "native_plugins" / "functions" / "echo" / "echo.c"
    (work / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.18)\nproject(echo_v2 C)\nfind_package(PlutinoContract 1.0 REQUIRED)\n"
        f'plutino_add_plugin(echo KIND function VERSION 1.1.0 SOURCES "{source}")\n')
    (so,) = [p for p in build_project(work, quiet=True) if p.name == "echo.so"]
    return pack(so, work / "echo-1.1.0.zip")


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    h = Host(tmp_path / "data")
    h.start()
    yield h
    h.close()


@pytest.fixture
def client(host: Host) -> Iterator[TestClient]:
    with TestClient(create_app(host), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real server on a fresh data dir; stopped (SIGTERM) at the end of the test."""
    proc = ServerProcess(tmp_path / "data").start()
    yield proc
    proc.stop()
