"""What every test area imports by name: bounded polling, a free loopback port, a folder
served over HTTP on loopback.

    from helpers import free_port, wait_for

tests/ is on ``sys.path`` through pytest's ``pythonpath`` option (pyproject.toml), so test
modules and the areas' own helper modules (api_helpers, iohelpers, engine_helpers) import it
the same way. Nothing here sleeps as an assertion: :func:`wait_for` polls a condition until a
deadline and fails saying what it was waiting for.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

#: How long :func:`wait_for` waits by default. Generous: a wait ends as soon as its condition
#: holds, and the tests share two cores with servers, brokers and compilers.
WAIT_S = 30.0


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    """Poll ``condition`` until it returns something true and return that; fail naming ``what``
    after ``timeout`` seconds. Polls every millisecond at first, backing off to every 25 ms, so
    a quick condition is seen at once and a slow one (an HTTP call) is not hammered."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 2, 0.025)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now: bind it soon)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder without logging each request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


class MisbehavingHandler(QuietHandler):
    """Serves a folder, plus two paths that misbehave on purpose: ``/redirect-ftp`` answers 302
    to an ftp:// URL, ``/moved/<name>`` answers 302 to ``/<name>``."""

    def do_GET(self) -> None:
        if self.path == "/redirect-ftp":
            self._redirect("ftp://127.0.0.1:1/echo.zip")
        elif self.path.startswith("/moved/"):
            self._redirect("/" + self.path.removeprefix("/moved/"))
        else:
            super().do_GET()

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextmanager
def serving(folder: Path, handler: type[QuietHandler] = QuietHandler) -> Iterator[str]:
    """A real HTTP server on a free loopback port serving ``folder``; yields its base URL
    (``http://127.0.0.1:<port>``) and stops it on exit."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
