"""What the MQTT benchmarks share: a free port, waiting for a listener, a mosquitto.

Standard library only: the benchmarks' publisher processes import it without the host.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[Any], what: str, timeout: float = 30) -> None:
    """Wait until ``proc`` listens on ``port``; exit naming ``what`` when it dies or times out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{what} did not start on port {port}")
            time.sleep(0.01)


class Mosquitto:
    """A mosquitto on a free loopback port, without persistence; ``settings``: more
    mosquitto.conf lines; ``preexec_fn``: run in the broker's process before it starts."""

    def __init__(self, workdir: Path, settings: tuple[str, ...] = (),
                 preexec_fn: Callable[[], None] | None = None) -> None:
        exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
        if exe is None:
            sys.exit("mosquitto is not installed; install it (apt-get install -y mosquitto) to run this benchmark")
        self.port = free_port()
        conf = workdir / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "persistence false",
                 "max_queued_messages 0", f"log_dest file {workdir}/mosquitto.log", *settings]
        conf.write_text("".join(f"{line}\n" for line in lines))
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=preexec_fn)
        wait_port(self.port, self.proc, f"mosquitto (see {workdir}/mosquitto.log)")

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
