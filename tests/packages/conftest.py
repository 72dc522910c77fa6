"""Fixtures for the package tests: packed bundled plugins, a data dir, a real HTTP server."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from package_helpers import BUNDLED
from plutino.manager import PluginManager
from plutino.packages import pack


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
