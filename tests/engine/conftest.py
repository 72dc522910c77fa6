"""Fixtures of the engine tests: a registry with the built-in I/O plugins on a private memory
broker, a manual clock, a RuleManager, and a small harness that feeds a rule and reads what
it emitted.

Nothing here sleeps to let time pass: windows are driven by the ManualClock, and the harness
waits (with a generous timeout) for the rule to have taken a batch in or to be idle, which
the runtime signals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from engine_helpers import T0, Harness
from plutino.engine import BUILTIN_NAMES, ManualClock, RuleManager
from plutino.io.log import LogSinkPlugin
from plutino.io.memory import (
    MemoryBroker,
    MemorySinkPlugin,
    MemorySourcePlugin,
)
from plutino.registry import Registry


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def registry(broker: MemoryBroker) -> Registry:
    reg = Registry(BUILTIN_NAMES)
    reg.register(MemorySourcePlugin(broker))
    reg.register(MemorySinkPlugin(broker))
    reg.register(LogSinkPlugin())
    return reg


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def manager(registry: Registry, clock: ManualClock) -> Iterator[RuleManager]:
    m = RuleManager(registry, clock=clock)
    yield m
    m.shutdown()


@pytest.fixture
def h(manager: RuleManager, broker: MemoryBroker, clock: ManualClock) -> Harness:
    return Harness(manager, broker, clock)


@pytest.fixture(scope="session")
def native_functions(plugin_build: Path) -> dict[str, Any]:
    """The bundled native function libraries, loaded through the real loader."""
    from plutino.native.loader import load_plugin

    return {
        name: load_plugin(plugin_build / "functions" / f"{name}.so", kind="function")
        for name in ("fastmath", "accumulateWordCount", "echo")
    }
