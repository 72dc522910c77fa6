"""A worker's stdout and stderr, passed on to the host's log at a limited rate.

A plugin should never print, but one that does (1 MiB per call, say) must neither fill the
server's own streams nor block the worker: the pipe is drained as fast as the worker writes,
lines go to the log while the byte budget lasts (``plugin_output_bytes_per_s``), the rest is
counted and reported once a second.
"""

from __future__ import annotations

import logging
import os
import threading
import time

MAX_LINE = 1000
REPORT_EVERY_S = 1.0


class OutputReader:
    """Reads one pipe until its end, on a thread of its own."""

    def __init__(self, fd: int, worker: str, stream: str, bytes_per_s: int) -> None:
        self.fd = fd
        self.worker = worker
        self.stream = stream
        self.rate = max(1, bytes_per_s)
        self.log = logging.getLogger(f"plutino.worker.{stream}")
        self.level = logging.INFO if stream == "stdout" else logging.WARNING
        self.dropped = 0
        self.passed = 0
        self._budget = float(self.rate)
        self._last = time.monotonic()
        self._reported = self._last
        self._partial = b""
        self.thread = threading.Thread(target=self._run, name=f"plutino-{worker}-{stream}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                self._take(chunk)
        finally:
            if self._partial:
                self._line(self._partial)
            self._report(force=True)
            try:
                os.close(self.fd)
            except OSError:
                pass

    def _take(self, chunk: bytes) -> None:
        now = time.monotonic()
        self._budget = min(float(self.rate), self._budget + (now - self._last) * self.rate)
        self._last = now
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_LINE:
            lines.append(self._partial)
            self._partial = b""
        for line in lines:
            cost = len(line) + 1
            if self._budget >= cost:
                self._budget -= cost
                self._line(line)
            else:
                self.dropped += cost
        self._report()

    def _line(self, line: bytes) -> None:
        text = line[:MAX_LINE].decode("utf-8", "replace").rstrip()
        if len(line) > MAX_LINE:
            text += f" ... ({len(line) - MAX_LINE} more bytes)"
        self.passed += len(line) + 1
        self.log.log(self.level, "[%s %s] %s", self.worker, self.stream, text)

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.dropped and (force or now - self._reported >= REPORT_EVERY_S):
            self.log.warning("[%s %s] %d bytes of plugin output dropped: over the limit of %d bytes/s"
                             " (setting plugin_output_bytes_per_s); a plugin should log through the host"
                             " API, not print", self.worker, self.stream, self.dropped, self.rate)
            self.dropped = 0
            self._reported = now


__all__ = ["OutputReader"]
