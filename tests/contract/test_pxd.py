"""plutino.pxd restates plutino.h for Cython, and a Cython plugin built on it works.

A field missing from the .pxd, or a callback declared with the wrong signature, would only show
when some plugin author hit it. Here the struct declarations are compared field by field with
the header's, and plugins/cy_funcs.pyx -- which assigns a callback to every slot of every
table -- is translated by Cython and compiled with incompatible pointer assignments as errors,
then loaded and called on Arrow data like any plugin.
"""

from __future__ import annotations

import re
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

import cffi
import pyarrow as pa
import pytest

import plutino_contract as contract

from .contract_helpers import (
    PLUGINS_DIR,
    NativeHost,
    exported_plutino_symbols,
    read_tag_section,
    require_tool,
    run,
    unpack_tag,
)

PXD = Path(contract.get_pxd_dir()) / "plutino.pxd"


def pxd_structs(text: str) -> dict[str, list[str]]:
    """Struct name -> field names, in order, from the .pxd's `struct X:` blocks."""
    structs: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        head = re.match(r"^    (?:ctypedef )?struct (\w+):\s*$", line)
        if head:
            current = structs.setdefault(head.group(1), [])
            continue
        if current is None or not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if indent < 8:
            current = None
        elif indent == 8:  # a field (deeper lines continue a callback's parameter list)
            pointer = re.search(r"\(\*(\w+)\)", line)
            current.append(pointer.group(1) if pointer else re.sub(r"\[.*", "", line.split()[-1]))
    return structs


def test_pxd_declares_every_struct_of_the_header_with_the_same_fields_in_order() -> None:
    ffi = cffi.FFI()
    ffi.cdef(contract.CDEF)
    _typedefs, names, _unions = ffi.list_types()
    from_header = {n: [f for f, _ in ffi.typeof(f"struct {n}").fields] for n in names}
    from_pxd = pxd_structs(PXD.read_text())
    assert {n: from_pxd.get(n) for n in from_header} == from_header


def test_pxd_declares_every_numeric_and_string_macro(include_dir: Path) -> None:
    header = (include_dir / "plutino" / "plutino.h").read_text()
    macros = set(re.findall(r"^#define (PLUTINO_[A-Z0-9_]+) (?:\d|\")", header, re.M))
    macros |= set(re.findall(r"^#define (ARROW_FLAG_\w+) \d", header, re.M))
    declared = set(re.findall(r"\b((?:PLUTINO|ARROW_FLAG)_[A-Z0-9_]+)\b", PXD.read_text()))
    assert macros - declared == set()


def test_pxd_declares_every_helper_function(include_dir: Path) -> None:
    helpers = (include_dir / "plutino" / "plutino_helpers.h").read_text()
    public = set(re.findall(r"^static inline [\w\s\*]*?\b(plutino_[a-z0-9][a-z0-9_]*)\(", helpers, re.M))
    assert "plutino_strings_finish" in public
    declared = set(re.findall(r"\b(plutino_[a-z0-9][a-z0-9_]*)\(", PXD.read_text()))
    assert public - declared == set()


@pytest.fixture(scope="module")
def cy_so(tmp_path_factory: pytest.TempPathFactory, include_dir: Path) -> Path:
    """cy_funcs.pyx translated by Cython and compiled as plutino_add_plugin would."""
    work = tmp_path_factory.mktemp("cython")
    c_file = work / "cy_funcs.c"
    cython = shutil.which("cython") or shutil.which("cython3")
    translate = [cython] if cython else [sys.executable, "-m", "cython"]
    run([*translate, "-3", "--fast-fail", "-I", contract.get_pxd_dir(),
         str(PLUGINS_DIR / "cy_funcs.pyx"), "-o", str(c_file)])
    require_tool("gcc")
    out = work / "cy_funcs.so"
    run(["gcc", "-shared", "-fPIC", "-fvisibility=hidden", "-O1",
         "-Werror=incompatible-pointer-types", "-Werror=discarded-qualifiers",
         "-Werror=implicit-function-declaration", '-DPLUTINO_PLUGIN_VERSION="3.0.0"',
         f"-I{include_dir}", f"-I{sysconfig.get_paths()['include']}", str(c_file), "-o", str(out)])
    return out


def test_cython_plugin_carries_the_tag_and_exports_the_entry_symbol(cy_so: Path) -> None:
    tag = unpack_tag(read_tag_section(cy_so))
    assert (tag["name"], tag["plugin_version"], tag["kind"]) == ("cy_funcs", "3.0.0", contract.KIND_FUNCTION)
    # A Cython module also exports its (never called) PyInit_ function; no other plutino symbol.
    assert exported_plutino_symbols(cy_so) == [contract.ENTRY_SYMBOL]


def test_cython_plugin_descriptor_is_filled_by_the_entry_call(cy_so: Path, native_host: Any) -> None:
    host: NativeHost = native_host
    d = host.load(cy_so)
    assert d.struct_size == host.ffi.sizeof("plutino_plugin")
    assert (d.abi_major, d.abi_minor, d.kind) == (contract.ABI_MAJOR, contract.ABI_MINOR, contract.KIND_FUNCTION)
    assert host.ffi.string(d.version) == b"3.0.0"
    assert list(host.functions(d)) == ["twice", "upper", "count"]


def call(host: NativeHost, fn: Any, arrays: list[pa.Array]) -> tuple[int, Any]:
    args, types, borrowed = host.export(arrays)
    out, out_type = host.ffi.new("struct ArrowArray*"), host.ffi.new("struct ArrowSchema*")
    status = fn.call(host.ctx, host.ffi.NULL, len(arrays), args, types, len(arrays[0]), out, out_type)
    NativeHost.release_all(borrowed)
    return status, (host.import_array(out, out_type) if status == contract.OK else None)


def test_cython_functions_compute_on_arrow_arrays(cy_so: Path, native_host: Any) -> None:
    host: NativeHost = native_host
    fns = host.functions(host.load(cy_so))
    assert call(host, fns["twice"], [pa.array([1.5, None, -3.0])]) == (contract.OK, pa.array([3.0, None, -6.0]))
    status, result = call(host, fns["upper"], [pa.array(["abc", None, "MiX3d"] * 10)])
    assert status == contract.OK and result.to_pylist() == ["ABC", None, "MIX3D"] * 10

    status, _ = call(host, fns["upper"], [pa.array([1.0])])
    assert status == contract.INVALID
    assert host.last_error() == "upper: argument must be utf8 ('u'), got 'g'"


def test_cython_aggregate_counts_per_group(cy_so: Path, native_host: Any) -> None:
    host: NativeHost = native_host
    ffi = host.ffi
    fn = host.functions(host.load(cy_so))["count"]
    args, types, borrowed = host.export([pa.array([1, None, 3, 4])])
    out, out_type = ffi.new("struct ArrowArray*"), ffi.new("struct ArrowSchema*")
    ids = ffi.new("int32_t[]", [1, 1, 0, 1])
    assert fn.aggregate(host.ctx, ffi.NULL, 1, args, types, 4, ids, 2, out, out_type) == contract.OK
    NativeHost.release_all(borrowed)
    assert host.import_array(out, out_type).to_pylist() == [1, 2]
    assert host.logs == [(contract.LOG_DEBUG, "count: 2 groups")]
