"""The Arrow UDF: plugins and a select list, as a picklable batch -> batch callable.

:func:`udf` builds an :class:`ArrowUdf`; the work is :mod:`plutino.udf.compiled`'s (the plan
kept per process, run through the engine's pipeline). Nothing here runs per row.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

import pyarrow as pa

from plutino.errors import PlutinoError

from . import compiled
from .plugins import PluginFile

Batch = TypeVar("Batch", pa.RecordBatch, pa.Table)
PathLike = str | os.PathLike[str]


class ArrowUdf:
    """A select list (with a filter and per-batch GROUP BY) over native plugins' functions.

    Picklable: it holds the plugin files (their bytes when embedded) and the SQL, nothing that
    belongs to a process. Build it with :func:`plutino.udf`."""

    def __init__(self, plugins: tuple[PluginFile, ...], select: str, where: str | None = None,
                 group_by: str | None = None) -> None:
        self.plugins = plugins
        self.select = select
        self.where = where
        self.group_by = group_by
        self.sql = compiled.sql_of(select, where, group_by)
        #: what the per-process caches know this UDF by: its plugins' content and its SQL
        self.key = hashlib.sha256("\0".join([*(p.sha256 for p in plugins), self.sql]).encode()).hexdigest()

    def __call__(self, data: Batch) -> Batch:
        """The result of the select over ``data``: a RecordBatch for a RecordBatch, a Table for a Table."""
        if isinstance(data, pa.RecordBatch):
            return compiled.for_schema(self, data.schema).batch([data])
        if isinstance(data, pa.Table):
            return compiled.for_schema(self, data.schema).table(data.to_batches())
        raise TypeError(f"a plutino UDF maps a pyarrow.RecordBatch or pyarrow.Table, got {type(data).__name__};"
                        " with Ray Data pass batch_format=\"pyarrow\" to map_batches")

    def map_batches(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """One result batch per input batch (none for a batch whose rows are all filtered out):
        Spark's ``mapInArrow`` shape. Every result has :meth:`output_schema` of its input's."""
        for batch in batches:
            out = compiled.for_schema(self, batch.schema).batch([batch])
            if out.num_rows:
                yield out

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        """The schema of every result over batches of ``input_schema`` (plans the query in this
        process, loading the plugins if they are not yet)."""
        return compiled.for_schema(self, input_schema).schema

    def __repr__(self) -> str:
        names = ", ".join(p.name for p in self.plugins) or "built-ins only"
        return f"<plutino.udf ({names}) {self.sql!r}>"


def udf(plugins: PathLike | Sequence[PathLike], select: str, *, where: str | None = None,
        group_by: str | None = None, embed: bool = True, check: bool = True) -> ArrowUdf:
    """An :class:`ArrowUdf` running ``select`` (and ``where``, ``group_by``) with the functions of
    ``plugins`` (paths of plugin .so files or package .zip files). See :mod:`plutino.udf`."""
    paths = [plugins] if isinstance(plugins, (str, os.PathLike)) else list(plugins)
    if not isinstance(select, str) or not select.strip():
        raise PlutinoError("plutino.udf needs select=: the select list of a rule, e.g."
                           " select=\"haversine(lat1, lon1, lat2, lon2) AS d\"")
    for name, value in (("where", where), ("group_by", group_by)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise PlutinoError(f"plutino.udf: {name}= must be SQL text or None, got {value!r}")
    files = tuple(PluginFile.read(p, "function", embed=embed) for p in paths)
    seen: dict[str, str] = {}
    for f in files:
        if f.name in seen and f.sha256 != seen[f.name]:
            raise PlutinoError(f"plutino.udf: two different plugins named '{f.name}' ({f.label}); pass one of them")
        seen[f.name] = f.sha256
    unique = tuple({f.sha256: f for f in files}.values())
    made = ArrowUdf(unique, select, where, group_by)
    if check:
        compiled.check(made)
    return made


__all__ = ["ArrowUdf", "udf"]
