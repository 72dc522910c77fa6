"""Fixtures for the contract's tests: real compilers, real ELF files, real Arrow data.

Helpers that tests import by name live in contract_helpers.py.
"""

from __future__ import annotations

from itertools import count
from pathlib import Path
from typing import Callable, Iterator

import pytest

import plutino_contract as contract

from .contract_helpers import NativeHost, require_tool, run


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: takes several seconds (creates a venv, installs packages); runs in CI"
    )


@pytest.fixture(scope="session")
def include_dir() -> Path:
    return Path(contract.get_include())


@pytest.fixture(scope="session")
def compile_shared(include_dir: Path) -> Callable[..., Path]:
    """Compile C (or C++) sources into a plugin shared object the way plutino_add_plugin does."""

    def _compile(sources: list[Path], out: Path, *, compiler: str = "gcc",
                 flags: tuple[str, ...] = ()) -> Path:
        require_tool(compiler)
        run([compiler, "-shared", "-fPIC", "-fvisibility=hidden", "-O1", f"-I{include_dir}",
             *flags, *map(str, sources), "-o", str(out)])
        return out

    return _compile


@pytest.fixture(scope="session")
def compile_and_run(include_dir: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """Compile a C program that includes plutino.h, run it and return its stdout."""
    numbers = count()

    def _run(source: str) -> str:
        require_tool("gcc")
        work = tmp_path_factory.mktemp("prog")
        n = next(numbers)
        src, exe = work / f"prog{n}.c", work / f"prog{n}"
        src.write_text(source)
        run(["gcc", "-std=c11", "-Wall", "-Werror", f"-I{include_dir}", str(src), "-o", str(exe)])
        return run([str(exe)]).stdout

    return _run


@pytest.fixture
def native_host() -> Iterator[NativeHost]:
    yield NativeHost()
