"""Fixtures for the package tests: packed bundled plugins, a data dir, a real HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import os
import sys
import threading
from functools import partial
from pathlib import Path
from typing import Iterator

import pytest

from plutino.manager import PluginManager
from plutino.packages import pack
from plutino.scaffold import build_project

REPO = Path(__file__).resolve().parents[2]

#: The bundled plugins, as (kind, name); each is packed from the test build and installed.
BUNDLED = [
    ("source", "random"),
    ("sink", "file"),
    ("function", "echo"),
    ("function", "accumulateWordCount"),
    ("function", "fastmath"),
    ("function", "geo"),
]


@pytest.fixture(scope="session")
def zips(plugin_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with <name>.zip for every bundled plugin, packed with plutino.packages.pack."""
    out = tmp_path_factory.mktemp("zips")
    for kind, name in BUNDLED:
        pack(plugin_build / f"{kind}s" / f"{name}.so", out / f"{name}.zip")
    return out


@pytest.fixture(scope="session")
def http_base(zips: Path) -> Iterator[str]:
    """A real HTTP server on a free loopback port serving the zips folder."""
    handler = partial(_QuietHandler, directory=str(zips))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "plutino_data"


@pytest.fixture
def manager(home: Path) -> Iterator[PluginManager]:
    mgr = PluginManager(home)
    yield mgr
    mgr.store.close()


def snapshot(home: Path, manager: PluginManager) -> tuple[dict[str, str], dict]:
    """Every file under the data dir (but the SQLite files) with its sha256, and every store row."""
    files = {}
    for path in sorted(home.rglob("*")):
        rel = path.relative_to(home).as_posix()
        if rel.startswith("store.db"):
            continue
        files[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return files, manager.store.dump()


def rebuild(kind: str, name: str, version: str, work: Path) -> Path:
    """Compile a bundled plugin's sources again with another VERSION (PLUTINO_PLUGIN_VERSION).

    The bundled plugins declare themselves with PLUTINO_PLUGIN_VERSION, which
    plutino_add_plugin(... VERSION v) defines, so a copy built with VERSION 1.1.0 is the same
    code with 1.1.0 in its ABI tag and descriptor. Returns the new .so; its name.yaml/json are
    copied beside it so `pack` picks them up as it does for the test build.
    """
    src = REPO / "native_plugins" / f"{kind}s" / name
    sources = sorted(p for p in src.iterdir() if p.suffix in (".c", ".pyx"))
    project = work / f"{name}-{version}"
    project.mkdir(parents=True)
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.18)\n"
        f"project(rebuild_{name} C)\n"
        "find_package(PlutinoContract 1.0 REQUIRED)\n"
        f"plutino_add_plugin({name} KIND {kind} VERSION {version} SOURCES "
        + " ".join(f'"{p}"' for p in sources) + ")\n"
    )
    for extra in (f"{name}.yaml", f"{name}.json"):
        if (src / extra).is_file():
            (project / extra).write_bytes((src / extra).read_bytes())
    (so,) = [p for p in build_project(project, quiet=True) if p.name == f"{name}.so"]
    return so


def subprocess_env() -> dict[str, str]:
    """The environment for a child Python that imports this tree's plutino and contract."""
    paths = [str(REPO / "host"), str(REPO / "contract"), *sys.path]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


if not (REPO / "tests" / "conftest.py").exists():  # TEMP: until the loader's conftest lands

    @pytest.fixture(scope="session")
    def plugin_build() -> Path:
        return Path("/tmp/pkgdev/plugins")
