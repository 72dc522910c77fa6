"""A plugin compiled against CPython's headers (Cython) runs only in that CPython: the tag
records which (plutino_tag.runtime, contract 1.1.0), and the host refuses another one before
dlopen. A plugin that asks for CPython symbols without saying which is refused too."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import plutino_contract as contract
from plutino.errors import PluginRefused
from plutino.native.loader import check_plugin, inspect_plugin
from plutino.native.tag import host_platform

from .loader_helpers import fresh_copy, patch_bytes, tag_offset

RUNTIME_OFFSET = 176  # plutino_tag.runtime: after contract_version[16] at 160


@pytest.fixture(scope="module")
def geo(plugin_build: Path) -> Path:
    return plugin_build / "functions" / "geo.so"


def test_a_cython_plugin_records_the_cpython_it_was_built_for(geo: Path) -> None:
    tag = inspect_plugin(geo)
    assert tag.runtime == host_platform().runtime
    assert tag.runtime.startswith("cp3")
    assert check_plugin(geo).to_dict()["runtime"] == tag.runtime


def test_a_c_plugin_needs_no_runtime(plugin_build: Path) -> None:
    assert inspect_plugin(plugin_build / "functions" / "echo.so").runtime == ""


def test_a_plugin_built_for_another_cpython_is_refused_before_dlopen(geo: Path, tmp_path: Path) -> None:
    other = fresh_copy(geo, tmp_path)
    patch_bytes(other, tag_offset(other) + RUNTIME_OFFSET, b"cp39".ljust(12, b"\0"))
    with pytest.raises(PluginRefused) as refused:
        inspect_plugin(other)
    message = str(refused.value)
    assert refused.value.field == "runtime"
    assert "compiled against Python 3.9 (cp39)" in message
    assert f"this host runs {host_platform().runtime[2]}." in message
    assert "rebuild the plugin with this host's Python" in message


def test_cpython_symbols_without_a_runtime_in_the_tag_are_refused(tmp_path: Path) -> None:
    include_dir = contract.get_include()
    # built without Python.h, so the tag says nothing, but it calls into the interpreter
    source = tmp_path / "sneaky.c"
    source.write_text(
        '#include "plutino/plutino.h"\n'
        "extern int Py_IsInitialized(void);\n"
        "static plutino_status c(plutino_context* x, void* s, int32_t n, const struct ArrowArray* const* a,\n"
        "  const struct ArrowSchema* const* t, int64_t l, struct ArrowArray* o, struct ArrowSchema* ot) {\n"
        "  return Py_IsInitialized() ? PLUTINO_OK : PLUTINO_ERROR; }\n"
        "static const plutino_function f = {sizeof(plutino_function), 0, \"sneaky\", 0, 0,\n"
        "                                   NULL, NULL, NULL, c, NULL};\n"
        "static const plutino_function* const fs[] = {&f};\n"
        'PLUTINO_DECLARE_FUNCTIONS("sneaky", "1.0.0", fs)\n')
    out = tmp_path / "sneaky.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-fvisibility=hidden", f"-I{include_dir}", str(source), "-o", str(out)],
                   check=True, capture_output=True)
    result = check_plugin(out)
    assert not result.ok
    assert result.refusal is not None and result.refusal.field == "runtime"
    assert "calls into CPython (1 undefined Py* symbols, e.g. Py_IsInitialized)" in str(result.refusal)
