"""A source plugin as a Ray Data datasource, a sink plugin as a Ray Data datasink.

Following Ray's docs for custom I/O (``ray.data.Datasource.get_read_tasks`` returning
``ReadTask`` s, ``ray.data.Datasink.write`` per write task)::

    source = PluginDatasource("random.so", {"interval": 0, "batch_size": 100_000,
                                            "pattern": {"count": 50, "temperature": 30.0}},
                              batches=100)
    ds = ray.data.read_datasource(source)              # 100 batches, read by up to 100 tasks
    ds.write_datasink(PluginDatasink("file.so", {"path": "/tmp/out.jsonl"}))

The plugin is driven as the host drives it (:class:`~plutino.native.adapters.NativeSource` /
``NativeSink``: create with the config as JSON, open, ``next`` / ``write``, ``flush``,
close), and loaded once per worker process like a UDF's (:mod:`plutino.udf.plugins`: the bytes
travel in the pickle, the tag is checked before ``dlopen``). The config is the plugin's yaml
beside the file (``default:``, then the ``conf_key`` section) overlaid by the one given, as
a stream's or an action's is (:class:`~plutino.engine.plugin_config.YamlConfigResolver`).

Importing this module imports ray; ``import plutino.udf`` does not.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from ray.data import Datasink, Datasource, ReadTask
from ray.data.block import BlockMetadata

from plutino.engine.plugin_config import YamlConfigResolver
from plutino.errors import PlutinoError
from plutino_contract.protocols import Context, EndOfStream

from .plugins import PluginFile, load

#: How long a read task waits for one batch before it fails naming the source.
NEXT_TIMEOUT_S = 60.0


def _config(plugin: PluginFile, path: str | os.PathLike[str], conf_key: str,
            config: Mapping[str, Any] | None) -> dict[str, Any]:
    resolver = YamlConfigResolver({plugin.kind: [Path(os.fspath(path)).parent]})
    return resolver(plugin.kind, plugin.name, conf_key, dict(config or {}))


class PluginDatasource(Datasource):
    """``batches`` batches of a source plugin, read by up to ``parallelism`` Ray tasks.

    ``config``: one mapping for every task, or a sequence of them, one per task (e.g. another
    ``seed`` each, so the tasks' rows differ); then there are that many tasks. A task reads its
    share of the batches and closes the source; a source that ends first (EndOfStream) ends its
    task's share early."""

    def __init__(self, plugin: str | os.PathLike[str], config: Mapping[str, Any] | Sequence[Mapping[str, Any]]
                 | None = None, *, batches: int, conf_key: str = "default", embed: bool = True) -> None:
        super().__init__()
        if not isinstance(batches, int) or batches < 1:
            raise PlutinoError(f"PluginDatasource: batches must be a whole number >= 1, got {batches!r}")
        self.plugin = PluginFile.read(plugin, "source", embed=embed)
        given = [config] if config is None or isinstance(config, Mapping) else list(config)
        if not given:
            raise PlutinoError("PluginDatasource: config is an empty list; give one mapping, or one per read task")
        self.configs = [_config(self.plugin, plugin, conf_key, c) for c in given]
        self.per_task = len(given) > 1
        self.batches = batches
        self._schema = self._check()

    def _check(self) -> pa.Schema:
        """Create the source here once (its create() judges the config) and take its schema."""
        source = load(self.plugin).create(self.configs[0], Context(plugin_name=self.plugin.name))
        try:
            return source.schema()
        finally:
            source.close()

    def schema(self) -> pa.Schema:
        return self._schema

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_name(self) -> str:
        return f"Plugin({self.plugin.name})"

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[ReadTask]:
        tasks = len(self.configs) if self.per_task else max(1, min(parallelism, self.batches))
        share, extra = divmod(self.batches, tasks)
        out = []
        for i in range(tasks):
            count = share + (1 if i < extra else 0)
            if count == 0:
                continue
            config = self.configs[i] if self.per_task else self.configs[0]
            meta = BlockMetadata(num_rows=None, size_bytes=None, input_files=None, exec_stats=None)
            out.append(ReadTask(_Reader(self.plugin, config, count, i), meta, schema=self._schema,
                                per_task_row_limit=per_task_row_limit))
        return out


class _Reader:
    """One read task: ``count`` batches of a new source instance (a picklable callable)."""

    def __init__(self, plugin: PluginFile, config: dict[str, Any], count: int, index: int) -> None:
        self.plugin, self.config, self.count, self.index = plugin, config, count, index

    def __call__(self) -> Iterator[pa.Table]:
        context = Context(plugin_name=self.plugin.name, rule_id="ray", op_id=f"read_{self.index}")
        source = load(self.plugin).create(self.config, context)
        try:
            source.open()
            for _ in range(self.count):
                batch = self._next(source)
                if batch is None:
                    return
                yield pa.Table.from_batches([batch])
        finally:
            source.close()

    def _next(self, source: Any) -> pa.RecordBatch | None:
        deadline = time.monotonic() + NEXT_TIMEOUT_S
        while True:
            try:
                batch = source.next(1.0)
            except EndOfStream:
                return None
            if batch is not None:
                return batch
            if time.monotonic() > deadline:
                raise PlutinoError(f"source plugin '{self.plugin.name}' ({self.plugin.label}) gave no batch in"
                                   f" {NEXT_TIMEOUT_S:g} s; check its config (interval, connection)")


class PluginDatasink(Datasink[int]):
    """Each write task creates a sink instance with ``config``, writes its blocks (Arrow, no copy
    per row), flushes and closes it; ``rows_written`` is the total once ``write_datasink`` returns."""

    def __init__(self, plugin: str | os.PathLike[str], config: Mapping[str, Any] | None = None, *,
                 conf_key: str = "default", embed: bool = True) -> None:
        self.plugin = PluginFile.read(plugin, "sink", embed=embed)
        self.config = _config(self.plugin, plugin, conf_key, config)
        self.rows_written = 0

    def get_name(self) -> str:
        return f"Plugin({self.plugin.name})"

    def write(self, blocks: Iterable[Any], ctx: Any) -> int:
        index = getattr(ctx, "task_idx", 0)
        context = Context(plugin_name=self.plugin.name, rule_id="ray", op_id=f"write_{index}")
        sink = load(self.plugin).create(self.config, context)
        rows = 0
        try:
            sink.open()
            for block in blocks:
                table = block if isinstance(block, pa.Table) else pa.table(block)
                for batch in table.to_batches():
                    if batch.num_rows:
                        sink.write(batch)
                        rows += batch.num_rows
            sink.flush()
        finally:
            sink.close()
        return rows

    def on_write_complete(self, write_result: Any) -> None:
        self.rows_written = sum(write_result.write_returns)


__all__ = ["PluginDatasink", "PluginDatasource"]
