"""Fixtures of the I/O tests: a real mosquitto on a free loopback port (one per session, and
fresh ones for tests that restart theirs), MQTT test clients, and a registry with every
built-in I/O plugin."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from iohelpers import Mosquitto, MqttClient
from plutino.engine import BUILTIN_NAMES
from plutino.io.builtin import register_builtins
from plutino.io.memory import MemoryBroker
from plutino.registry import Registry


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def new_broker(tmp_path: Path) -> Iterator[Callable[[], Mosquitto]]:
    """Start a broker of the test's own (for tests that stop and restart it)."""
    made: list[Mosquitto] = []

    def start() -> Mosquitto:
        broker = Mosquitto(tmp_path / f"broker{len(made)}")
        broker.start()
        made.append(broker)
        return broker

    yield start
    for broker in made:
        broker.stop()


@pytest.fixture
def mqtt_client(mosquitto: Mosquitto) -> Iterator[MqttClient]:
    client = MqttClient(mosquitto)
    yield client
    client.close()


@pytest.fixture
def topic() -> str:
    """A topic no other test uses (the session broker is shared)."""
    return f"plutino-test/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def memory_broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def registry(memory_broker: MemoryBroker) -> Registry:
    """Every built-in I/O plugin (the memory ones on the test's own broker)."""
    reg = Registry(BUILTIN_NAMES)
    assert register_builtins(reg, memory_broker) == []
    return reg
