"""The contract's CMake package builds a plugin in a project that knows nothing else.

The project is the one the README describes: find_package(PlutinoContract 1.0 REQUIRED) and
plutino_add_plugin(). The package is found through PlutinoContract_DIR, as printed by
`python -m plutino_contract --cmake-dir`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import plutino_contract as contract

from .contract_helpers import (
    NativeHost,
    cmake_build_plugin,
    cmake_configure,
    exported_plutino_symbols,
    read_tag_section,
    require_tool,
    run,
    unpack_tag,
    write_plugin_project,
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cmake_project")
    project = write_plugin_project(root / "src")
    return cmake_build_plugin(project, root / "build", contract.get_cmake_dir())


def test_plutino_add_plugin_builds_a_module_without_lib_prefix(built: Path) -> None:
    assert built.is_file()
    assert built.name == "tiny.so"


def test_the_plugin_carries_the_tag_with_the_version_given_to_cmake(built: Path) -> None:
    tag = unpack_tag(read_tag_section(built))
    assert tag["magic"] == contract.TAG_MAGIC
    assert (tag["kind"], tag["name"], tag["plugin_version"]) == (contract.KIND_FUNCTION, "tiny", "1.2.3")
    assert (tag["abi_major"], tag["abi_minor"]) == (contract.ABI_MAJOR, contract.ABI_MINOR)


def test_the_plugin_exports_only_the_entry_symbol(built: Path) -> None:
    assert exported_plutino_symbols(built) == [contract.ENTRY_SYMBOL]


def test_the_plugin_loads_and_computes(built: Path, native_host: Any) -> None:
    import pyarrow as pa

    host: NativeHost = native_host
    fn = host.functions(host.load(built))["plus_one"]
    args, types, borrowed = host.export([pa.array([1, None, 41])])
    out, out_type = host.ffi.new("struct ArrowArray*"), host.ffi.new("struct ArrowSchema*")
    assert fn.call(host.ctx, host.ffi.NULL, 1, args, types, 3, out, out_type) == contract.OK
    NativeHost.release_all(borrowed)
    assert host.import_array(out, out_type).to_pylist() == [2, None, 42]


@pytest.mark.parametrize("requested", ["", "1", "1.0", "1.0.0", "1.1"])
def test_a_request_for_this_major_and_no_newer_minor_is_met(requested: str, tmp_path: Path) -> None:
    project = write_plugin_project(tmp_path / "src", requested)
    proc = cmake_configure(project, tmp_path / "build", contract.get_cmake_dir(), check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("requested", ["2.0", "1.2", "0.9"])
def test_a_request_for_another_major_or_a_newer_minor_fails_to_configure(
    requested: str, tmp_path: Path
) -> None:
    project = write_plugin_project(tmp_path / "src", requested)
    proc = cmake_configure(project, tmp_path / "build", contract.get_cmake_dir(), check=False)
    assert proc.returncode != 0
    assert "PlutinoContract" in proc.stderr
    assert "1.1.0" in proc.stderr  # CMake names the version it found and refused


def test_the_readme_example_builds_and_computes(tmp_path: Path, native_host: Any) -> None:
    import re

    import pyarrow as pa

    readme = (Path(__file__).resolve().parents[2] / "contract" / "README.md").read_text()
    c_source = re.search(r"`tiny\.c`:\n\n```c\n(.*?)```", readme, re.S)
    cmake_lists = re.search(r"`CMakeLists\.txt`:\n\n```cmake\n(.*?)```", readme, re.S)
    assert c_source and cmake_lists, "contract/README.md no longer has the tiny.c example"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "tiny.c").write_text(c_source.group(1))
    (tmp_path / "src" / "CMakeLists.txt").write_text(cmake_lists.group(1))
    so = cmake_build_plugin(tmp_path / "src", tmp_path / "build", contract.get_cmake_dir())
    assert unpack_tag(read_tag_section(so))["plugin_version"] == "1.2.3"

    host: NativeHost = native_host
    fn = host.functions(host.load(so))["plus_one"]
    args, types, borrowed = host.export([pa.array([5, None, -1])])
    out, out_type = host.ffi.new("struct ArrowArray*"), host.ffi.new("struct ArrowSchema*")
    assert fn.call(host.ctx, host.ffi.NULL, 1, args, types, 3, out, out_type) == contract.OK
    NativeHost.release_all(borrowed)
    assert host.import_array(out, out_type).to_pylist() == [6, None, 0]


@pytest.mark.parametrize(("wanted", "compatible"), [("1.0", "TRUE"), ("1.99", "FALSE"), ("2.0", "FALSE")])
def test_the_version_file_reports_the_version_plutino_h_declares(tmp_path: Path, wanted: str, compatible: str) -> None:
    """PlutinoContractConfigVersion.cmake reads PLUTINO_CONTRACT_VERSION from the header beside
    it (the one place the release is written) and accepts requests of the same major."""
    require_tool("cmake")
    script = tmp_path / "version.cmake"
    version_file = Path(contract.get_cmake_dir()) / "PlutinoContractConfigVersion.cmake"
    script.write_text(f'set(PACKAGE_FIND_VERSION "{wanted}")\n'
                      f'set(PACKAGE_FIND_VERSION_MAJOR "{wanted.split(".")[0]}")\n'
                      f'include("{version_file.as_posix()}")\n'
                      'message(STATUS "${PACKAGE_VERSION} ${PACKAGE_VERSION_COMPATIBLE}")\n')
    out = run(["cmake", "-P", str(script)]).stdout
    assert out.strip() == f"-- {contract.__version__} {compatible}"
