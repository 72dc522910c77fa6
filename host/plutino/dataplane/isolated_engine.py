"""``plutino.Engine(isolated=True)``: the engine of a script, with its plugins in a worker.

The library engine runs in the caller's process by default: it is meant for scripts and
tests, where a plugin's crash is the script's crash. With ``isolated=True`` its plugins are
load-checked in a probe process and run in one worker process of its own; a query's batches
go to the worker and its result comes back (pickled Arrow), so a crashing or hanging plugin
raises an error naming it instead of ending the script, and the next query gets a new worker.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa

from plutino.config import DataPlaneSettings
from plutino.dataplane.protocol import WorkerGone
from plutino.dataplane.supervisor import Death, Supervisor, Worker
from plutino.errors import PlutinoError

log = logging.getLogger("plutino.embedded")


class WorkerEngine:
    """One worker process that runs queries with a set of plugins."""

    def __init__(self, settings: DataPlaneSettings | None = None) -> None:
        self.settings = settings or DataPlaneSettings(workers=1, spare_workers=0)
        self._dir = tempfile.TemporaryDirectory(prefix="plutino-engine-")
        self.plugins: list[dict[str, Any]] = []
        self.supervisor = Supervisor(self.settings, Path(self._dir.name), self._init_args, self._died)
        self._worker: Worker | None = None

    def _init_args(self) -> dict[str, Any]:
        return {"data_root": self._dir.name, "plugins": list(self.plugins), "streams": []}

    def _died(self, worker: Worker, death: Death) -> None:
        if worker is self._worker:
            self._worker = None

    def add_plugin(self, plugin: Any) -> None:
        entry = {"kind": plugin.kind, "name": plugin.name, "path": plugin.path, "version": plugin.version}
        self.plugins.append(entry)
        if self._worker is not None and not self._worker.dead:
            self._worker.call("add_plugin", self.settings.call_timeout_s * 3 + 5, **entry)

    def query(self, sql: str, table: pa.Table, options: dict[str, Any]) -> pa.Table:
        worker = self._worker
        if worker is None or worker.dead:
            worker = self._worker = self.supervisor.take("dedicated")
        try:
            return worker.call("query_batches", self.settings.call_timeout_s * 3 + 60, sql=sql, table=table,
                               options=options)
        except WorkerGone as exc:
            raise PlutinoError(f"the query's worker died: {exc}; the next query starts a new one") from None

    def close(self) -> None:
        self.supervisor.close()
        self._dir.cleanup()


__all__ = ["WorkerEngine"]
