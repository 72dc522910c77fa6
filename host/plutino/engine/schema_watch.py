"""A schemaless stream's rows checked against the rule that reads them.

A rule over a schemaless stream (``CREATE STREAM s () WITH (...)``) is planned without types:
``SELECT c2f(name)`` or a column typo (``temprature``) cannot be found when it is created. Its
first rows say what the columns are, so :class:`SchemaWatch`

- plans the rule again with the column types of the first batch that has every column the
  rule reads with a type (not absent, not all null): a type error there would fail every
  batch, so the rule stops with that error as its status message instead of failing (and
  logging) batch after batch;
- watches the next batches for the columns the query reads: one that has not appeared in
  :data:`WATCH_BATCHES` batches is named in a warning of the rule's status (and the log),
  since it gives nulls forever, which is what a misspelt name does.

After that it costs nothing: the watch ends and the batches go by untouched.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable

import pyarrow as pa

from .errors import SqlError
from .hints import closest, listing
from .streams import StreamDef

_log = logging.getLogger("plutino.engine")

#: batches a read column may be missing from before the rule's status warns about it
WATCH_BATCHES = 10


class SchemaWatch:
    """The first batches of ``stream`` against the rule ``rule_id`` (its plan read ``read``)."""

    def __init__(self, rule_id: str, stream: StreamDef, read: frozenset[str],
                 replan: Callable[[StreamDef], Any]) -> None:
        self.rule_id = rule_id
        self.stream = stream
        self.read = read
        self.replan = replan
        self.seen: set[str] = set()
        self.batches = 0
        self.checked = False  # the types were checked (on the first rows that type every read column)
        self.done = False
        self.warning = ""

    def on_batch(self, batch: pa.RecordBatch) -> str | None:
        """An error that must stop the rule, or None."""
        if self.done:
            return None
        names = [n for n in batch.schema.names if not n.startswith("__")]
        self.batches += 1
        self.seen.update(names)
        if not self.checked:
            types = {n: batch.schema.field(n).type for n in names}
            # only rows that give every column the rule reads a type say what the types are
            # (a column absent or all null here may well be typed in the next rows)
            if all(c in types and not pa.types.is_null(types[c]) for c in self.read):
                self.checked = True
                error = self._check_types(types)
                if error is not None:
                    self.done = True
                    return error
        missing = sorted(self.read - self.seen)
        if not missing and self.checked:
            self.done = True
        elif self.batches >= WATCH_BATCHES:
            self.done = True
            if missing:
                self.warning = self._missing(missing)
                _log.warning("rule %s: %s", self.rule_id, self.warning)
        return None

    def _check_types(self, types: dict[str, pa.DataType]) -> str | None:
        fields = list(types.items())
        observed = dataclasses.replace(self.stream, fields=tuple(fields), schemaless=False)
        try:
            self.replan(observed)
        except SqlError as exc:
            shown = ", ".join(f"{n} {t}" for n, t in fields[:8]) + (", ..." if len(fields) > 8 else "")
            return (f"the first rows of schemaless stream {self.stream.name} ({shown}) do not fit the rule: {exc}; "
                    f"fix the rule, or declare the stream's fields (CREATE STREAM {self.stream.name} (...))")
        return None

    def _missing(self, missing: list[str]) -> str:
        parts = []
        for name in missing:
            best = closest(name, self.seen)
            parts.append(f"'{name}'" + (f" (did you mean '{best}'?)" if best else ""))
        return (f"column {', '.join(parts)} read by the rule has not appeared in the first {self.batches} batches of "
                f"stream {self.stream.name}, so it is null; the rows have: {listing(self.seen)}")


__all__ = ["SchemaWatch", "WATCH_BATCHES"]
