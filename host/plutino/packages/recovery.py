"""Crash safety of installs, updates and deletes: where a crash is tested, and the clean-up after one.

The plugin manager notes every file it is about to put in place, or to remove, in the store's
``pending_files`` before it touches the file, and forgets it in the same transaction that
writes (or deletes) the plugin's record. So after a crash at any point a pending file either
belongs to a record (the change committed: keep it) or to none (it did not: remove it), and
:func:`remove_leftovers` at the next start finishes the job, with the staging folder.

Crash safety is tested by killing the process at each step boundary: :data:`INSTALL_STEPS` and
:data:`DELETE_STEPS` name them, and :func:`crash_point` kills the process (SIGKILL) at the one
named by ``$PLUTINO_TEST_CRASH_AT``. After any of them, the next start finds the plugin either
fully installed or fully absent (docs/reliability.md).
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

from plutino.config import KINDS, DataDir
from plutino.store import Store

#: The environment variable that names the step at which :func:`crash_point` kills the process.
CRASH_ENV = "PLUTINO_TEST_CRASH_AT"

#: Step boundaries of an install (and update), in order: after the zip was fetched, unpacked,
#: verified (manifest, sha256, ABI tag, install.sh) and loaded; after the new files were noted
#: as pending; after the first and after the last rename into place (inside the uncommitted
#: transaction); after the commit.
INSTALL_STEPS = ("install:fetched", "install:unpacked", "install:verified", "install:loaded",
                 "install:pending", "install:moving", "install:moved", "install:committed")

#: Step boundaries of a delete: before the transaction; after it committed (record gone, files
#: noted as pending); after the first and after the last file was removed.
DELETE_STEPS = ("delete:checked", "delete:recorded", "delete:unlinking", "delete:unlinked")


def crash_point(step: str) -> None:
    """A step boundary of an install or a delete, where a test may crash the process.

    When ``$PLUTINO_TEST_CRASH_AT`` names ``step``, the process kills itself with SIGKILL
    here, as a power cut or the OOM killer would: no cleanup runs. Unset (always, outside
    the crash tests), this costs one dictionary lookup.
    """
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def remove_leftovers(data: DataDir, store: Store) -> None:
    """Empty the staging folder, and remove every pending file that no record claims."""
    shutil.rmtree(data.staging_dir, ignore_errors=True)
    data.staging_dir.mkdir(parents=True, exist_ok=True)
    recorded = {f for r in store.list_plugins() for f in (r.file, *r.config_files)}
    for rel in store.pending_files():
        if rel not in recorded:
            (data.root / rel).unlink(missing_ok=True)
            _prune(data, data.root / rel)
        store.forget_pending(rel)


def _prune(data: DataDir, removed: Path) -> None:
    """Remove the folders a removed file leaves empty, up to (not including) the kind's
    own folder: ``etc/sources/random/conf/x.yaml`` takes ``conf/`` and ``random/`` along."""
    keep = {data.plugins_dir(k) for k in KINDS} | {data.etc_dir(k) for k in KINDS}
    folder = removed.parent
    while folder not in keep and data.root in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty, or already gone
            if folder.exists():
                return
        folder = folder.parent


__all__ = ["CRASH_ENV", "DELETE_STEPS", "INSTALL_STEPS", "crash_point", "remove_leftovers"]
