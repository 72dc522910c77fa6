"""The last step of an install is all or nothing, and a crash in it is cleaned up at the next start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from package_helpers import snapshot
from plutino.packages.manager import PluginManager
from plutino.packages.format import PackageError


def test_a_failure_while_moving_files_into_place_rolls_everything_back(manager, home, zips, monkeypatch):
    manager.install("function", "echo", str(zips / "echo.zip"))
    (home / "etc/sources").mkdir(exist_ok=True)
    (home / "etc/sources/random.yaml").write_text("default: {edited: by hand}\n")
    before = snapshot(home, manager)
    real_replace = os.replace

    def failing_replace(src, dst):  # the disk fills up just as the yaml moves into place
        if Path(dst).name == "random.json":
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr("plutino.packages.manager.os.replace", failing_replace)
    with pytest.raises(PackageError) as info:
        manager.install("source", "random", str(zips / "random.zip"))
    assert str(info.value) == (f"cannot install random.zip: [Errno 28] No space left on device; nothing was "
                               f"changed: check the free space and permissions of {home} and try again")
    monkeypatch.undo()
    assert snapshot(home, manager) == before
    assert (home / "etc/sources/random.yaml").read_text() == "default: {edited: by hand}\n"
    assert manager.registry.find("source", "random") is None
    # and the install works once the disk has room again
    assert manager.install("source", "random", str(zips / "random.zip")).status == "loaded"


def test_files_left_by_a_crash_before_the_commit_are_removed_at_the_next_start(manager, home, zips):
    manager.install("function", "echo", str(zips / "echo.zip"))
    # what a crash between "rename into place" and "commit" leaves: the file, announced as
    # pending, with no record; and a half-extracted staging dir
    orphan = home / "plugins/functions/fastmath@v1.0.0.so"
    orphan.write_bytes(b"half-installed")
    manager.store.add_pending("plugins/functions/fastmath@v1.0.0.so", "install of function fastmath 1.0.0")
    (home / "staging/install-abc/files").mkdir(parents=True)
    manager.store.close()

    restarted = PluginManager(home)
    assert restarted.load_all() == {"loaded": ["function/echo"], "failed": []}
    assert not orphan.exists()
    assert restarted.store.pending_files() == []
    assert list((home / "staging").iterdir()) == []


def test_a_file_the_manager_did_not_put_there_is_left_alone(manager, home):
    manual = home / "plugins/functions/mine.so"
    manual.write_bytes(b"dropped in by hand")
    assert manager.load_all() == {"loaded": [], "failed": []}
    assert manual.read_bytes() == b"dropped in by hand"
