"""The catalog: the streams and rules the engine knows, in memory, with a persistence hook.

The engine reads definitions from here only. Persisting them is someone else's job: pass
``on_put``/``on_delete`` callbacks (the host wires them to the SQLite store) and restore a
saved catalog with :meth:`Catalog.load`, which does not call them back.
"""

from __future__ import annotations

import threading
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping

from .errors import AlreadyExistsError, NotFoundError
from .rules import RuleDef
from .streams import StreamDef, parse_create_stream

#: ``on_put(kind, name, record)``: kind is "stream" or "rule"; record is JSON-ready.
PutHook = Callable[[str, str, dict[str, Any]], None]
#: ``on_delete(kind, name)``.
DeleteHook = Callable[[str, str], None]


class Catalog:
    """Streams and rules by name. Thread-safe; a hook that raises aborts the change."""

    def __init__(self, on_put: PutHook | None = None, on_delete: DeleteHook | None = None) -> None:
        self._streams: dict[str, StreamDef] = {}
        self._rules: dict[str, RuleDef] = {}
        self._sorted_rules: list[RuleDef] | None = None  # rules() until a rule changes
        self._lock = threading.RLock()
        self.on_put = on_put
        self.on_delete = on_delete

    # -- streams ---------------------------------------------------------------------------
    def put_stream(self, stream: StreamDef, *, replace: bool = False) -> None:
        with self._lock:
            old = self._streams.get(stream.name)
            if old is not None and (not replace or old.is_table != stream.is_table):
                what = old.what
                raise AlreadyExistsError(  # streams and tables share their names, as FROM and JOIN do
                    what, stream.name, f"drop it first (DROP {what.upper()} {stream.name}) or choose another name"
                )
            if self.on_put:
                self.on_put("stream", stream.name, stream_record(stream))
            self._streams[stream.name] = stream

    def get_stream(self, name: str) -> StreamDef:
        with self._lock:
            try:
                return self._streams[name]
            except KeyError:
                raise NotFoundError("stream", name, list(self._streams)) from None

    def has_stream(self, name: str) -> bool:
        with self._lock:
            return name in self._streams

    def drop_stream(self, name: str) -> StreamDef:
        with self._lock:
            stream = self.get_stream(name)
            if self.on_delete:
                self.on_delete("stream", name)
            del self._streams[name]
            return stream

    def stream_map(self) -> Mapping[str, StreamDef]:
        """The streams by name, read-only and live (no copy, no sort: planning a rule among
        ten thousand streams looks one up)."""
        return MappingProxyType(self._streams)

    def streams(self) -> list[StreamDef]:
        with self._lock:
            return sorted(self._streams.values(), key=lambda s: s.name)

    # -- rules -----------------------------------------------------------------------------
    def put_rule(self, rule: RuleDef, *, replace: bool = False) -> None:
        with self._lock:
            if not replace and rule.id in self._rules:
                raise AlreadyExistsError(
                    "rule",
                    rule.id,
                    f"delete it first (DELETE /rules/{rule.id}), update it with PUT, or choose another id",
                )
            if self.on_put:
                self.on_put("rule", rule.id, rule.to_dict())
            self._rules[rule.id] = rule
            self._sorted_rules = None

    def get_rule(self, rule_id: str) -> RuleDef:
        with self._lock:
            try:
                return self._rules[rule_id]
            except KeyError:
                raise NotFoundError("rule", rule_id, list(self._rules)) from None

    def has_rule(self, rule_id: str) -> bool:
        with self._lock:
            return rule_id in self._rules

    def delete_rule(self, rule_id: str) -> RuleDef:
        with self._lock:
            rule = self.get_rule(rule_id)
            if self.on_delete:
                self.on_delete("rule", rule_id)
            del self._rules[rule_id]
            self._sorted_rules = None
            return rule

    def rules(self) -> list[RuleDef]:
        """Every rule, by id. The sorted list is kept until a rule is added or removed: ``GET
        /rules`` reads it for each list of 10,000."""
        with self._lock:
            if self._sorted_rules is None:
                self._sorted_rules = sorted(self._rules.values(), key=lambda r: r.id)
            return list(self._sorted_rules)

    # -- restore ---------------------------------------------------------------------------
    def load(self, streams: Iterable[dict[str, Any]] = (), rules: Iterable[dict[str, Any]] = ()) -> None:
        """Restore saved records (as given to ``on_put``) without calling the hooks."""
        with self._lock:
            for record in streams:
                stream = parse_create_stream(record["sql"])
                self._streams[stream.name] = stream
            for record in rules:
                rule = RuleDef.from_dict(record)
                self._rules[rule.id] = rule
            self._sorted_rules = None


def stream_record(stream: StreamDef) -> dict[str, Any]:
    """What the store keeps of a stream: its statement (re-parsed on load) and its name."""
    return {"name": stream.name, "sql": stream.sql}


__all__ = ["Catalog", "DeleteHook", "PutHook", "stream_record"]
