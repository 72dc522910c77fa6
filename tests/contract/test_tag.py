"""PLUTINO_DECLARE_* writes an ABI tag the host can read from the file without loading it.

A plugin compiled here with plain gcc (the way plutino_add_plugin compiles it: -shared -fPIC
-fvisibility=hidden) is read with pyelftools; the tag must describe this machine exactly as
the host will describe itself with Python's platform facts.
"""

from __future__ import annotations

import platform
import struct
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

import plutino_contract as contract

from .contract_helpers import PLUGINS_DIR, exported_plutino_symbols, read_tag_section, unpack_tag


@pytest.fixture(scope="module")
def tiny_so(tmp_path_factory: pytest.TempPathFactory, compile_shared: Callable[..., Path]) -> Path:
    out = tmp_path_factory.mktemp("tag") / "tiny.so"
    return compile_shared([PLUGINS_DIR / "tiny.c"], out, flags=('-DPLUTINO_PLUGIN_VERSION="2.5.1"',))


@pytest.fixture(scope="module")
def tag(tiny_so: Path) -> dict[str, Any]:
    return unpack_tag(read_tag_section(tiny_so), "<" if sys.byteorder == "little" else ">")


def test_tag_section_holds_exactly_one_tag(tiny_so: Path) -> None:
    assert len(read_tag_section(tiny_so)) == contract.TAG_SIZE


def test_tag_identifies_itself(tag: dict[str, Any]) -> None:
    assert tag["magic"] == contract.TAG_MAGIC
    assert tag["tag_size"] == contract.TAG_SIZE == 192
    assert tag["tag_format"] == contract.TAG_FORMAT
    assert tag["reserved0"] == 0
    assert tag["runtime"] == ""  # a C plugin needs no runtime besides libc
    assert tag["reserved"] == bytes(4)


def test_tag_records_the_plugin_kind_name_and_version(tag: dict[str, Any]) -> None:
    assert tag["kind"] == contract.KIND_FUNCTION
    assert tag["name"] == "tiny"
    assert tag["plugin_version"] == "2.5.1"
    assert tag["contract_version"] == contract.__version__


def test_tag_records_the_abi_the_plugin_was_built_for(tag: dict[str, Any]) -> None:
    assert (tag["abi_major"], tag["abi_minor"]) == (contract.ABI_MAJOR, contract.ABI_MINOR)


def test_tag_describes_this_machine_as_python_sees_it(tag: dict[str, Any]) -> None:
    libc = "glibc" if platform.libc_ver()[0] == "glibc" else "musl"
    assert tag["os"] == platform.system().lower()
    assert tag["arch"] == platform.machine()
    assert tag["libc"] == libc
    assert tag["pointer_size"] == struct.calcsize("P")
    assert tag["byte_order"] == (1 if sys.byteorder == "little" else 2)


def test_the_entry_symbol_is_the_only_exported_plutino_symbol(tiny_so: Path) -> None:
    assert exported_plutino_symbols(tiny_so) == [contract.ENTRY_SYMBOL]


def test_the_descriptor_agrees_with_the_tag(tiny_so: Path, tag: dict[str, Any], native_host: Any) -> None:
    d = native_host.load(tiny_so)
    ffi = native_host.ffi
    assert d.struct_size == ffi.sizeof("plutino_plugin")
    assert (d.abi_major, d.abi_minor, d.kind) == (tag["abi_major"], tag["abi_minor"], tag["kind"])
    assert ffi.string(d.name).decode() == tag["name"]
    assert ffi.string(d.version).decode() == tag["plugin_version"]
    assert ffi.string(d.contract_version).decode() == tag["contract_version"]
    assert list(native_host.functions(d)) == ["plus_one"]
