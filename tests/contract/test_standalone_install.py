"""A plugin built outside the repository, from only `pip install ./contract`, loads and works.

This is what a plugin author does, and what this test does in a temporary directory::

    python3 -m venv venv
    venv/bin/pip install ./contract                  # from the Plutino repository root
    cmake -S myplugin -B build -DPlutinoContract_DIR="$(venv/bin/python -m plutino_contract --cmake-dir)"
    cmake --build build                               # -> build/tiny.so

with myplugin/CMakeLists.txt::

    cmake_minimum_required(VERSION 3.18)
    project(tiny_plugin LANGUAGES C)
    find_package(PlutinoContract 1.0 REQUIRED)
    plutino_add_plugin(tiny KIND function SOURCES tiny.c VERSION 1.2.3)

The installed package must stand on its own: the venv's Python runs from the temporary
directory with no PYTHONPATH, so nothing can come from the source tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import plutino_contract as contract

from .contract_helpers import (
    NativeHost,
    cmake_build_plugin,
    exported_plutino_symbols,
    read_tag_section,
    run,
    unpack_tag,
    write_plugin_project,
)

CONTRACT_SOURCE = Path(__file__).resolve().parents[2] / "contract"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("standalone")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    has_hatchling = subprocess.run([str(python), "-c", "import hatchling"],
                                   capture_output=True).returncode == 0
    # A fresh venv has no hatchling, so pip builds in isolation (fetching hatchling); the
    # timeout keeps a stalled download from hanging the suite.
    run([*pip, *(["--no-build-isolation"] if has_hatchling else []), str(CONTRACT_SOURCE)],
        cwd=root, timeout=300, env=clean_env())
    return venv


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def venv_query(venv: Path, *args: str) -> str:
    proc = run([str(venv / "bin" / "python"), *args], cwd=venv.parent, env=clean_env())
    return proc.stdout.strip()


def test_installed_package_answers_from_its_own_copy(venv: Path) -> None:
    site = venv_query(venv, "-c", "import plutino_contract, os; print(os.path.dirname(plutino_contract.__file__))")
    assert site.startswith(str(venv))
    include = venv_query(venv, "-m", "plutino_contract", "--include")
    cmake_dir = venv_query(venv, "-m", "plutino_contract", "--cmake-dir")
    pxd_dir = venv_query(venv, "-m", "plutino_contract", "--pxd-dir")
    assert Path(include) == Path(site) / "include"
    assert Path(cmake_dir) == Path(site) / "cmake"
    assert Path(pxd_dir) == Path(site)
    for name in ("plutino.h", "plutino_helpers.h"):
        assert (Path(include) / "plutino" / name).is_file()
    for name in ("PlutinoContractConfig.cmake", "PlutinoContractConfigVersion.cmake"):
        assert (Path(cmake_dir) / name).is_file()
    assert (Path(pxd_dir) / "plutino.pxd").is_file()
    assert (Path(site) / "py.typed").is_file()
    assert venv_query(venv, "-m", "plutino_contract", "--version") == contract.__version__
    assert venv_query(venv, "-m", "plutino_contract", "--abi") == f"{contract.ABI_MAJOR}.{contract.ABI_MINOR}"
    cdef = venv_query(venv, "-c", "import plutino_contract; print(len(plutino_contract.CDEF))")
    assert int(cdef) == len(contract.CDEF)


def test_plugin_built_with_only_the_installed_contract_loads_and_computes(
    venv: Path, tmp_path: Path, native_host: Any
) -> None:
    cmake_dir = venv_query(venv, "-m", "plutino_contract", "--cmake-dir")
    project = write_plugin_project(tmp_path / "myplugin")
    so = cmake_build_plugin(project, tmp_path / "build", cmake_dir)
    cache = (tmp_path / "build" / "CMakeCache.txt").read_text()
    assert f"PlutinoContract_DIR:PATH={cmake_dir}" in cache or f"PlutinoContract_DIR:UNINITIALIZED={cmake_dir}" in cache
    assert str(CONTRACT_SOURCE) not in cache  # nothing came from the repository

    tag = unpack_tag(read_tag_section(so))
    assert (tag["magic"], tag["name"], tag["plugin_version"]) == (contract.TAG_MAGIC, "tiny", "1.2.3")
    assert (tag["abi_major"], tag["abi_minor"]) == (contract.ABI_MAJOR, contract.ABI_MINOR)
    assert exported_plutino_symbols(so) == [contract.ENTRY_SYMBOL]

    host: NativeHost = native_host
    fn = host.functions(host.load(so))["plus_one"]
    args, types, borrowed = host.export([pa.array([1, None, 41])])
    out, out_type = host.ffi.new("struct ArrowArray*"), host.ffi.new("struct ArrowSchema*")
    assert fn.call(host.ctx, host.ffi.NULL, 1, args, types, 3, out, out_type) == contract.OK
    NativeHost.release_all(borrowed)
    assert host.import_array(out, out_type).to_pylist() == [2, None, 42]


def test_editable_install_reads_the_source_tree(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
         "-e", str(CONTRACT_SOURCE)], cwd=tmp_path, timeout=300, env=clean_env())
    assert venv_query(venv, "-m", "plutino_contract", "--include") == str(CONTRACT_SOURCE / "include")
    assert venv_query(venv, "-m", "plutino_contract", "--cmake-dir") == str(CONTRACT_SOURCE / "cmake")
    site_packages = next((venv / "lib").glob("python*/site-packages"))
    assert not (site_packages / "plutino_contract").exists()  # no stale copies of the headers
