"""Per-plugin metrics: calls, rows, errors and time spent in each plugin, across all rules.

eKuiper has no per-plugin metrics; Plutino serves them at ``/metrics``. They are counted at
the edge, without touching the engine: the engine is given a :class:`MeteredRegistry`, a view
of the host's registry that hands out thin proxies of sources, sinks and functions. A proxy
times each data-path call (``source.next``, ``sink.write``, ``function.call`` and
``aggregate``) with ``perf_counter`` and adds to the plugin's counters; everything else
passes through untouched. The cost is a few hundred nanoseconds per batch, not per row.

Counters are monotonic for the life of the process (Prometheus counters), so they survive
rules being stopped, restarted and deleted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from plutino.registry import FunctionEntry
from plutino_contract.protocols import EndOfStream


@dataclass
class PluginCounter:
    """The counters of one plugin (and function, for a function library)."""

    kind: str
    plugin: str
    function: str = ""
    calls: int = 0
    rows: int = 0
    errors: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, rows: int, seconds: float, failed: bool = False) -> None:
        with self._lock:
            self.calls += 1
            self.rows += rows
            self.seconds += seconds
            if failed:
                self.errors += 1


class PluginMeters:
    """Every plugin's counters, by (kind, plugin, function)."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, str, str], PluginCounter] = {}
        self._lock = threading.Lock()

    def counter(self, kind: str, plugin: str, function: str = "") -> PluginCounter:
        key = (kind, plugin, function)
        with self._lock:
            found = self._counters.get(key)
            if found is None:
                found = self._counters[key] = PluginCounter(kind, plugin, function)
            return found

    def all(self) -> list[PluginCounter]:
        with self._lock:
            return [self._counters[k] for k in sorted(self._counters)]


class _Proxy:
    """Forwards every attribute it does not define to the wrapped object."""

    def __init__(self, inner: Any, counter: PluginCounter) -> None:
        self._inner = inner
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _MeteredSource(_Proxy):
    def next(self, timeout_s: float) -> Any:
        started = time.perf_counter()
        try:
            batch = self._inner.next(timeout_s)
        except EndOfStream:
            self._counter.add(0, time.perf_counter() - started)
            raise
        except BaseException:
            self._counter.add(0, time.perf_counter() - started, failed=True)
            raise
        self._counter.add(0 if batch is None else batch.num_rows, time.perf_counter() - started)
        return batch


class _MeteredSink(_Proxy):
    def write(self, batch: Any) -> None:
        started = time.perf_counter()
        try:
            self._inner.write(batch)
        except BaseException:
            self._counter.add(batch.num_rows, time.perf_counter() - started, failed=True)
            raise
        self._counter.add(batch.num_rows, time.perf_counter() - started)

    def __getattr__(self, name: str) -> Any:
        if name == "write_holding":  # a resend cache's write, metered like write()
            getattr(self._inner, name)  # AttributeError when the sink has none
            return self._write_holding
        return getattr(self._inner, name)

    def _write_holding(self, batch: Any, release: Any) -> bool:
        started = time.perf_counter()
        try:
            held = self._inner.write_holding(batch, release)
        except BaseException:
            self._counter.add(batch.num_rows, time.perf_counter() - started, failed=True)
            raise
        self._counter.add(batch.num_rows, time.perf_counter() - started)
        return bool(held)


class _MeteredInstance(_Proxy):
    def call(self, args: Sequence[Any], length: int) -> Any:
        started = time.perf_counter()
        try:
            out = self._inner.call(args, length)
        except BaseException:
            self._counter.add(length, time.perf_counter() - started, failed=True)
            raise
        self._counter.add(length, time.perf_counter() - started)
        return out

    def aggregate(self, args: Sequence[Any], length: int, group_ids: Any, ngroups: int) -> Any:
        started = time.perf_counter()
        try:
            out = self._inner.aggregate(args, length, group_ids, ngroups)
        except BaseException:
            self._counter.add(length, time.perf_counter() - started, failed=True)
            raise
        self._counter.add(length, time.perf_counter() - started)
        return out


class _MeteredPlugin(_Proxy):
    """A source or sink plugin whose instances are metered."""

    def create(self, config: Any, context: Any) -> Any:
        instance = self._inner.create(config, context)
        wrapper = _MeteredSource if self._counter.kind == "source" else _MeteredSink
        return wrapper(instance, self._counter)


class _MeteredFunction(_Proxy):
    def create(self, context: Any) -> Any:
        return _MeteredInstance(self._inner.create(context), self._counter)


class MeteredRegistry:
    """The part of :class:`plutino.registry.Registry` the engine uses, handing out metered
    proxies. Registration goes to the real registry (the plugin manager's), never here."""

    def __init__(self, registry: Any, meters: PluginMeters) -> None:
        self.registry = registry
        self.meters = meters

    def find(self, kind: str, name: str) -> Any | None:
        plugin = self.registry.find(kind, name)
        if plugin is None or kind == "function":
            return plugin
        return _MeteredPlugin(plugin, self.meters.counter(kind, plugin.name))

    def get(self, kind: str, name: str) -> Any:
        self.registry.get(kind, name)  # raises the registry's error when missing
        return self.find(kind, name)

    def plugins(self, kind: str | None = None) -> list[Any]:
        return self.registry.plugins(kind)

    def find_function(self, name: str) -> FunctionEntry | None:
        entry = self.registry.find_function(name)
        if entry is None:
            return None
        counter = self.meters.counter("function", entry.provider.name, entry.function.name)
        return FunctionEntry(_MeteredFunction(entry.function, counter), entry.provider)

    def function(self, name: str) -> FunctionEntry:
        self.registry.function(name)
        entry = self.find_function(name)
        assert entry is not None
        return entry

    def function_names(self) -> list[str]:
        return self.registry.function_names()


__all__ = ["MeteredRegistry", "PluginCounter", "PluginMeters"]
