"""Fixtures for the package tests: a real HTTP server serving the packed bundled plugins
(`zips`, `home` and `manager` are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import serving


@pytest.fixture(scope="session")
def http_base(zips: Path) -> Iterator[str]:
    """A real HTTP server on a free loopback port serving the zips folder."""
    with serving(zips) as base:
        yield base
