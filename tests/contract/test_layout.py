"""The cffi declarations (plutino_contract.CDEF) and the Python constants agree with plutino.h.

The host talks to plugins through cffi in ABI mode, so a struct laid out differently in CDEF
than in the header would corrupt memory silently. These tests compile C programs against the
header and compare what the C compiler says with what cffi and the Python package say.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any, Callable

import cffi
import pytest

import plutino_contract as contract


@pytest.fixture(scope="module")
def ffi() -> cffi.FFI:
    ffi = cffi.FFI()
    ffi.cdef(contract.CDEF)
    return ffi


@pytest.fixture(scope="module")
def header_text(include_dir: Path) -> str:
    return (include_dir / "plutino" / "plutino.h").read_text()


def cdef_structs(ffi: cffi.FFI) -> list[str]:
    _typedefs, structs, _unions = ffi.list_types()
    return sorted(structs)


def c_layout(compile_and_run: Callable[[str], str], ffi: cffi.FFI) -> dict[str, int]:
    """sizeof, _Alignof and offsetof of every struct and field in CDEF, as gcc lays them out."""
    lines = []
    for name in cdef_structs(ffi):
        ctype = f"struct {name}"
        lines.append(f'  printf("{name} sizeof %zu\\n", sizeof({ctype}));')
        lines.append(f'  printf("{name} alignof %zu\\n", _Alignof({ctype}));')
        for field, _ in ffi.typeof(ctype).fields:
            lines.append(f'  printf("{name} .{field} %zu\\n", offsetof({ctype}, {field}));')
    program = "\n".join([
        "#include <stddef.h>", "#include <stdio.h>", '#include "plutino/plutino.h"',
        "int main(void) {", *lines, "  return 0;", "}", ""])
    result = {}
    for line in compile_and_run(program).splitlines():
        struct_name, what, value = line.split()
        result[f"{struct_name} {what}"] = int(value)
    return result


def test_cdef_declares_every_struct_of_the_header(ffi: cffi.FFI, header_text: str) -> None:
    in_header = set(re.findall(r"\bstruct\s+(\w+)\s*\{", header_text))
    assert in_header, "no struct definitions found in plutino.h"
    assert set(cdef_structs(ffi)) == in_header


def test_every_struct_and_field_has_the_same_size_alignment_and_offset_in_cffi_and_gcc(
    ffi: cffi.FFI, compile_and_run: Callable[[str], str]
) -> None:
    from_gcc = c_layout(compile_and_run, ffi)
    from_cffi: dict[str, int] = {}
    for name in cdef_structs(ffi):
        ctype = ffi.typeof(f"struct {name}")
        from_cffi[f"{name} sizeof"] = ffi.sizeof(ctype)
        from_cffi[f"{name} alignof"] = ffi.alignof(ctype)
        for field, info in ctype.fields:
            from_cffi[f"{name} .{field}"] = info.offset
    assert len(from_gcc) > 60  # every struct and field was measured
    mismatches = {k: (from_cffi[k], from_gcc[k]) for k in from_gcc if from_cffi[k] != from_gcc[k]}
    assert not mismatches, f"cffi vs gcc (key: (cffi, gcc)): {mismatches}"


def test_every_abi_struct_starts_with_its_size(ffi: cffi.FFI) -> None:
    # plutino.h: every struct that crosses the ABI starts with uint32_t struct_size.
    abi_structs = ["plutino_host_api", "plutino_context", "plutino_source_api",
                   "plutino_sink_api", "plutino_function", "plutino_plugin"]
    for name in abi_structs:
        first_name, first = ffi.typeof(f"struct {name}").fields[0]
        assert (first_name, first.offset, first.type.cname) == ("struct_size", 0, "uint32_t"), name


def test_typedefs_have_the_same_size_in_cffi_and_gcc(
    ffi: cffi.FFI, compile_and_run: Callable[[str], str]
) -> None:
    typedefs, _structs, _unions = ffi.list_types()
    body = "\n".join(f'  printf("{t} %zu\\n", sizeof({t}));' for t in typedefs)
    out = compile_and_run(
        f'#include <stdio.h>\n#include "plutino/plutino.h"\nint main(void) {{\n{body}\n  return 0;\n}}\n')
    sizes = dict(line.split() for line in out.splitlines())
    assert {t: int(v) for t, v in sizes.items()} == {t: ffi.sizeof(t) for t in typedefs}


# ------------------------------------------------------------------ macros and constants

def numeric_macros(header_text: str) -> list[str]:
    """Every PLUTINO_* macro the header defines as a plain number (not the build-time facts)."""
    names = re.findall(r"^#define (PLUTINO_\w+) \d+u?\b", header_text, re.M)
    return sorted(set(names) - {"PLUTINO_TAG_BYTE_ORDER"})


@pytest.fixture(scope="module")
def macro_values(header_text: str, compile_and_run: Callable[[str], str]) -> dict[str, Any]:
    numbers = numeric_macros(header_text)
    strings = ["PLUTINO_TAG_SECTION", "PLUTINO_ENTRY_SYMBOL", "PLUTINO_CONTRACT_VERSION",
               "PLUTINO_TAG_MAGIC"]
    lines = [f'  printf("{m} %lld\\n", (long long)({m}));' for m in numbers]
    lines += [f'  printf("{m} %s\\n", {m});' for m in strings]
    lines.append('  printf("sizeof_plutino_tag %zu\\n", sizeof(plutino_tag));')
    lines += [f'  printf("offsetof_{f} %zu\\n", offsetof(plutino_tag, {f}));'
              for f in contract.TAG_FIELDS]
    out = compile_and_run("\n".join([
        "#include <stddef.h>", "#include <stdio.h>", '#include "plutino/plutino.h"',
        "int main(void) {", *lines, "  return 0;", "}", ""]))
    values: dict[str, Any] = {}
    for line in out.splitlines():
        key, value = line.split(" ", 1)
        values[key] = value if key in strings else int(value)
    return values


def test_header_defines_the_expected_families_of_numeric_macros(header_text: str) -> None:
    names = numeric_macros(header_text)
    for family in ("PLUTINO_KIND_", "PLUTINO_OK", "PLUTINO_LOG_", "PLUTINO_CONN_", "PLUTINO_FN_",
                   "PLUTINO_ABI_MAJOR", "PLUTINO_ABI_MINOR", "PLUTINO_TAG_FORMAT"):
        assert any(n.startswith(family) for n in names), family
    assert len(names) >= 23  # ABI 2, tag format, kinds 3, statuses 8, logs 4, conns 3, flags 2


def test_every_numeric_macro_equals_the_python_constant_of_the_same_name(
    header_text: str, macro_values: dict[str, Any]
) -> None:
    # PLUTINO_KIND_SOURCE -> plutino_contract.KIND_SOURCE, PLUTINO_OK -> OK, ...
    missing = [m for m in numeric_macros(header_text) if not hasattr(contract, m[len("PLUTINO_"):])]
    assert not missing, f"macros without a Python constant in plutino_contract: {missing}"
    differ = {m: (getattr(contract, m[len("PLUTINO_"):]), macro_values[m])
              for m in numeric_macros(header_text)
              if getattr(contract, m[len("PLUTINO_"):]) != macro_values[m]}
    assert not differ, f"(python, C) values differ: {differ}"


def test_version_and_name_macros_equal_the_python_constants(macro_values: dict[str, Any]) -> None:
    assert (macro_values["PLUTINO_ABI_MAJOR"], macro_values["PLUTINO_ABI_MINOR"]) == (
        contract.ABI_MAJOR, contract.ABI_MINOR)
    assert macro_values["PLUTINO_TAG_FORMAT"] == contract.TAG_FORMAT
    assert macro_values["PLUTINO_TAG_SECTION"] == contract.TAG_SECTION
    assert macro_values["PLUTINO_ENTRY_SYMBOL"] == contract.ENTRY_SYMBOL
    assert macro_values["PLUTINO_CONTRACT_VERSION"] == contract.__version__
    assert macro_values["PLUTINO_TAG_MAGIC"].encode() + b"\0" == contract.TAG_MAGIC


def test_the_contract_release_carries_the_abi_major_and_at_least_its_minor() -> None:
    # A release may move on without an ABI change (header macros, helpers, a tag field in
    # reserved bytes), but never names a major other than the ABI's.
    major, minor, _patch = contract.__version__.split(".")
    assert int(major) == contract.ABI_MAJOR
    assert int(minor) >= contract.ABI_MINOR


def test_status_names_cover_every_status_code(header_text: str) -> None:
    codes = re.findall(r"^#define (PLUTINO_[A-Z]+) (\d+)\s+/\*", header_text, re.M)
    statuses = {name: int(v) for name, v in codes
                if name in contract.STATUS_NAMES.values()}
    assert statuses == {name: code for code, name in contract.STATUS_NAMES.items()}


def test_tag_struct_has_the_size_of_plutino_tag(macro_values: dict[str, Any]) -> None:
    assert struct.calcsize("<" + contract.TAG_STRUCT) == macro_values["sizeof_plutino_tag"]
    assert contract.TAG_SIZE == macro_values["sizeof_plutino_tag"] == 192


def test_tag_fields_sit_at_the_offsets_of_plutino_tag(
    ffi: cffi.FFI, macro_values: dict[str, Any]
) -> None:
    codes = re.findall(r"\d*[a-zA-Z]", contract.TAG_STRUCT)
    assert len(codes) == len(contract.TAG_FIELDS)
    assert [name for name, _ in ffi.typeof("plutino_tag").fields] == list(contract.TAG_FIELDS)
    offset = 0
    for field, code in zip(contract.TAG_FIELDS, codes):
        assert offset == macro_values[f"offsetof_{field}"], field
        offset += struct.calcsize("<" + code)
