"""Helpers of the I/O tests: a real mosquitto broker and an MQTT test client (bounded
waiting and free ports are in tests/helpers.py)."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from helpers import free_port

WAIT_S = 15.0


class Mosquitto:
    """A mosquitto process on a loopback port, with persistence in ``workdir``.

    ``settings``: mosquitto.conf lines of a caller's own (``name value``), after the defaults;
    a setting named again there replaces the default."""

    def __init__(self, workdir: Path, port: int | None = None, settings: tuple[str, ...] = ()) -> None:
        exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
        if exe is None:
            raise RuntimeError("mosquitto is not installed; install it with: apt-get install -y mosquitto")
        self.exe = exe
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "persistence true",
                 f"persistence_location {workdir}/", "max_queued_messages 100000",
                 f"log_dest file {workdir}/mosquitto.log", f"user {getpass.getuser()}"]
        named = {line.split()[0] for line in settings}
        self.config.write_text("".join(f"{line}\n" for line in [*(x for x in lines if x.split()[0] not in named),
                                                                *settings]))

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + WAIT_S
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {err}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mosquitto did not listen on port {self.port} within {WAIT_S} s") from None
                time.sleep(0.01)

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its sessions and queued messages, then exits."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


class MqttClient:
    """A test-side MQTT client: publishes at qos 1 and records what its subscriptions receive."""

    def __init__(self, broker: Mosquitto, client_id: str = "") -> None:
        self.received: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.received.append((message.topic, message.payload))

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self._subscribed.clear()
        self.client.subscribe(topic, qos)
        assert self._subscribed.wait(WAIT_S), f"the broker did not acknowledge the subscription to {topic}"

    def publish(self, topic: str, payloads: list[bytes], qos: int = 1) -> None:
        infos = [self.client.publish(topic, p, qos) for p in payloads]
        for info in infos:
            info.wait_for_publish(WAIT_S)
            assert info.is_published(), f"the broker did not acknowledge a message to {topic}"

    def payloads(self, topic: str | None = None) -> list[bytes]:
        with self._lock:
            return [p for t, p in self.received if topic is None or t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
