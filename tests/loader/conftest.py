"""Fixtures of the loader tests: the corpus folder, marker files, patched copies of plugins."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def broken(plugin_build: Path) -> Path:
    """build/native/plugins/broken: the corpus and the loader's good fixtures."""
    return plugin_build / "broken"


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file every fixture's constructor appends its name to when dlopen runs it."""
    path = tmp_path / "constructor-ran"
    monkeypatch.setenv("PLUTINO_TEST_MARKER", str(path))
    return path
