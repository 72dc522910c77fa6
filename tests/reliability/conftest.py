"""Fixtures of the reliability tests: a loopback HTTP server that also misbehaves on purpose
(the packed bundled plugins, data directories and managers come from tests/conftest.py).

Everything runs on loopback and is bounded in time and count (see docs/reliability.md for the
figures these tests measure). The package tests' helpers (``tests/packages``) are reused.
"""

from __future__ import annotations

import http.server
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages"))



class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the zips folder, plus two paths that misbehave: /redirect-ftp answers 302 to an
    ftp:// URL, /moved/<name> answers 302 to /<name>."""

    def do_GET(self) -> None:
        if self.path == "/redirect-ftp":
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1:1/echo.zip")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/moved/"):
            self.send_response(302)
            self.send_header("Location", "/" + self.path.removeprefix("/moved/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def http_base(zips: Path) -> Iterator[str]:
    """A real HTTP server on a free loopback port serving the zips folder."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(zips)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
