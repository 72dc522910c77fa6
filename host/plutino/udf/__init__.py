"""Plutino's plugins in other engines: an Arrow UDF for Ray Data and Spark, a source and a sink for Ray.

Public API (settled; the Spark side, :mod:`plutino.udf.spark`, is written against it)::

    import plutino

    f = plutino.udf("build/geo.so",                       # or a list: several plugins; a package .zip
                    select="haversine(lat1, lon1, lat2, lon2) AS d, geohash(lat, lon, 7) AS h",
                    where="lat > 0")                      # optional
    f(batch_or_table)            -> the same kind (pa.RecordBatch -> pa.RecordBatch, pa.Table -> pa.Table)
    f.map_batches(iter_batches)  -> Iterator[pa.RecordBatch]   (Spark's mapInArrow)
    f.output_schema(input_schema) -> pa.Schema                 (Spark wants it before any row runs)

``plutino.udf(plugins, select, *, where=None, group_by=None, embed=True, check=True) -> ArrowUdf``

- ``plugins``: a path (``str`` / ``os.PathLike``) or a sequence of them; each a plugin file
  (``.so``) or a plugin package (``.zip`` from ``plutino plugin pack`` or an installed one),
  whose plugins must be function libraries. An empty sequence gives the built-in functions only.
- ``select``: the select list of a rule (``expr [AS name], ...``; ``*`` too), with the same
  built-in and plugin functions, checked as a rule's SQL is.
- ``where``: a filter, as a rule's WHERE.
- ``group_by``: GROUP BY keys (``"h"`` or ``"h, k"``). With keys, or with an aggregate in
  ``select`` (``count(*)``, ``avg(d)``, a plugin aggregate), each batch is aggregated on its own:
  one row per group **per batch** (Ray and Spark hand a UDF batches, not the whole data; combine
  the partial results with the engine's own groupby, as with any per-partition aggregate).
- ``embed``: carry the plugin files' bytes inside the pickle (default), so workers on other
  machines need no shared filesystem; a worker writes them to a private temporary file, checks
  the tag and only then ``dlopen``-s it. ``embed=False`` pickles the paths and their sha256: the
  worker loads the file at the same path and refuses one whose content differs.
- ``check``: load the plugins and plan the query in the calling process at once, so that a
  mistake (a missing file, a refused plugin, an unknown function) is raised here and not inside
  a remote worker.

:class:`ArrowUdf` is picklable (pickle and cloudpickle) and holds no per-process state: each
process loads each plugin once (cache keyed by the file's sha256, with the host's tag checks
through :func:`plutino.native.loader.load_plugin`) and plans the query once per input schema
(per thread), with the engine's own planner and pipeline (:func:`plutino.engine.query.prepare`).
:func:`load_count` is this process's number of plugin loads (``dlopen``-s), which shows that a
Ray actor loads its plugins once.

Ray Data (``pip install 'plutino[scaleout]'``; ray is imported only by these two)::

    ds = ray.data.read_datasource(plutino.udf.PluginDatasource("random.so", {"pattern": {...}},
                                                               batches=100, batch_size=100_000))
    ds = ds.map_batches(f, batch_format="pyarrow")
    ds.write_datasink(plutino.udf.PluginDatasink("file.so", {"path": "/tmp/out.jsonl"}))

Errors are :class:`plutino.errors.PlutinoError` (a refused plugin:
:class:`~plutino.errors.PluginRefused`; bad SQL: :class:`~plutino.engine.SqlError`), each
naming the file or the problem and the fix.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from .arrow_udf import ArrowUdf, udf
from .plugins import load_count

_RAY = {"PluginDatasource", "PluginDatasink"}


def __getattr__(name: str) -> Any:
    if name in _RAY:
        from . import ray_io

        return getattr(ray_io, name)
    raise AttributeError(f"module 'plutino.udf' has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """``plutino.udf`` is this package, and calling it calls :func:`udf`: ``plutino.udf(...)``
    and ``plutino.udf.PluginDatasource`` both read as the docs say, whichever was imported first."""

    def __call__(self, *args: Any, **kwargs: Any) -> ArrowUdf:
        return udf(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # a module pickles by name (cloudpickle does so for plain modules; code that Ray or
        # Spark pickles by value may refer to plutino.udf)
        return importlib.import_module, (self.__name__,)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["ArrowUdf", "PluginDatasink", "PluginDatasource", "load_count", "udf"]
