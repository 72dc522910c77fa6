"""What the benchmarks that run rules through worker processes share: a Host on a temporary
data directory, with plugins installed as packages, and its workers found and pinned.

The server runs no rule in its own process: :class:`plutino.host.Host` (the control plane)
places each rule on a worker process, which runs it with the same engine as before (see
plutino.dataplane). :class:`TempHost` is such a Host on a data directory of its own under
/tmp, removed by :meth:`TempHost.close`. Plugins go in the way a user installs them: the
.so is packed (:func:`plutino.packages.format.pack`, with its default config beside it for
a source) and installed with ``host.install_plugin(kind, name, zip)``; a source's config is
written to ``etc/sources/<name>.yaml`` of the data directory, where the worker reads it each
time a rule starts. A rule's worker is found by the pid its status shows (field ``worker``).

``make bench`` skips this file (its name starts with ``_``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

import _harness  # noqa: F401 -- puts host/ and contract/ on the path in a checkout
from plutino.config import DataPlaneSettings
from plutino.host import Host
from plutino.packages.format import pack

_PID = re.compile(r"\(pid (\d+)")


class TempHost:
    """A started :class:`Host` on a temporary data directory.

    ``workers``: pool workers (``PLUTINO_WORKERS``); ``spare_workers``: started workers kept
    ready (``PLUTINO_SPARE_WORKERS``); ``settings``: any other DataPlaneSettings field."""

    def __init__(self, workers: int = 1, spare_workers: int = 1, quiet: bool = True, **settings: Any) -> None:
        if quiet:  # the host logs every worker start and death; the tables are the output here
            logging.getLogger("plutino").setLevel(logging.CRITICAL)
        self.tmp = Path(tempfile.mkdtemp(prefix="plutino-bench-host-"))
        self.settings = DataPlaneSettings(workers=workers, spare_workers=spare_workers, **settings)
        self.host = Host(self.tmp / "data", dataplane=self.settings)
        self.host.start()
        self.root = self.host.data.root

    # -- plugins -----------------------------------------------------------------------------
    def install(self, kind: str, so: Path, config: Mapping[str, Any] | None = None,
                functions: Iterable[str] | None = None) -> None:
        """Pack ``so`` (a source gets ``config`` as its default section, or ``{}``) and install it."""
        name = so.stem.split("@")[0]
        folder = self.tmp / "packages" / name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(so, folder / f"{name}.so")
        if kind == "source":
            (folder / f"{name}.yaml").write_text(yaml.safe_dump({"default": dict(config or {})}, sort_keys=False))
        package = pack(folder / f"{name}.so", self.tmp / "packages" / f"{name}.zip", functions=functions)
        record = self.host.install_plugin(kind, name, str(package))
        if getattr(record, "status", "loaded") != "loaded":
            raise RuntimeError(f"{kind} plugin {name} did not load: {getattr(record, 'error', record)}")

    def source_config(self, name: str, config: Mapping[str, Any], section: str = "default") -> None:
        """Set ``section`` of ``etc/sources/<name>.yaml`` to ``config`` (the other sections
        stay): the config of every rule that starts from now on (the worker reads the file at
        each start). Keys keep their order: the order of a ``random`` pattern's columns is
        the order they are drawn in, so a sorted pattern would give other rows for a seed."""
        path = self.root / "etc" / "sources" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
        doc[section] = dict(config)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
        os.replace(tmp, path)

    # -- rules and workers -------------------------------------------------------------------
    def status(self, rule_id: str) -> dict[str, Any]:
        return self.host.rule_status(rule_id)

    def worker_pid(self, rule_id: str) -> int | None:
        """The pid of the worker running ``rule_id`` (from its status), None if it has none."""
        return worker_pid_of(self.status(rule_id))

    def pin(self, rule_id: str, cpus: set[int]) -> int:
        """Pin the worker of ``rule_id`` (every thread of it) to ``cpus``; return its pid."""
        pid = self.worker_pid(rule_id)
        if pid is None:
            raise RuntimeError(f"rule {rule_id} has no worker: {self.status(rule_id)}")
        pin_process(pid, cpus)
        return pid

    def wait_spares(self, timeout_s: float = 60.0) -> float:
        """Wait until the supervisor holds as many ready spare workers as configured; return
        the seconds waited."""
        sup = self.host.engine.supervisor
        began = time.monotonic()
        while True:
            ready = [w for w in list(sup.spares) if w.ready.done() and not w.dead]
            if len(ready) >= self.settings.spare_workers:
                return time.monotonic() - began
            if time.monotonic() - began > timeout_s:
                raise RuntimeError(f"no ready spare worker after {timeout_s:g} s")
            time.sleep(0.005)

    def close(self) -> None:
        try:
            self.host.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def worker_pid_of(status: Mapping[str, Any]) -> int | None:
    """The worker's pid in a rule's status (field ``worker``: "w3 (pid 1234, pool)")."""
    found = _PID.search(str(status.get("worker", "")))
    return int(found.group(1)) if found else None


def pin_process(pid: int, cpus: set[int]) -> None:
    """Pin every thread of process ``pid`` to ``cpus`` (sched_setaffinity acts on one thread;
    threads started later inherit the mask of the thread that starts them)."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        tids = [pid]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:  # a thread that ended meanwhile
            pass


def counter(status: Mapping[str, Any], prefix: str, suffix: str) -> int:
    """The value of the one status field that starts with ``prefix`` and ends with ``suffix``,
    e.g. ``counter(status, "sink_count_", "_rows_out_total")``."""
    keys = [k for k in status if k.startswith(prefix) and k.endswith(suffix)]
    if len(keys) != 1:
        raise KeyError(f"no single status field {prefix}*{suffix} in {sorted(status)}")
    return int(status[keys[0]])


__all__ = ["TempHost", "counter", "pin_process", "worker_pid_of"]
