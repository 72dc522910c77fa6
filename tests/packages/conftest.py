"""Fixtures for the package tests: a real HTTP server serving the packed bundled plugins
(`zips`, `home` and `manager` are in tests/conftest.py)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest


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
