"""Loading: idempotent per real path, never a second dlopen, the tag as read, host services."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from plutino.errors import PluginRefused
from plutino.native.hostapi import ERROR_CAPACITY, NativeContext, ffi, host_api
from plutino.native.loader import check_plugin, inspect_plugin, load_failures, load_plugin, loaded_plugins
from plutino.native.tag import PluginTag, host_platform
from plutino_contract.protocols import Context

from .loader_helpers import fresh_copy


@pytest.fixture
def dlopen_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every dlopen the loader makes (and still makes it)."""
    calls: list[str] = []
    real = ffi.dlopen

    def spy(name: Any, flags: int = 0) -> Any:
        calls.append(name)
        return real(name, flags)

    monkeypatch.setattr(ffi, "dlopen", spy)  # the host layout's FFI, which the loader dlopens with
    return calls


def test_inspect_reads_the_tag_without_loading(broken: Path, tmp_path: Path, marker: Path) -> None:
    path = fresh_copy(broken / "good_function.so", tmp_path)
    tag = inspect_plugin(path)
    host = host_platform()
    assert tag == PluginTag(
        path=str(path), kind="function", name="good_function", version="1.2.3", abi=(1, 1),
        contract_version="1.1.0", os=host.os, arch=host.arch, libc=host.libc, pointer_size=8,
        byte_order="little-endian" if host.little_endian else "big-endian", elf_class=64,
        machine=host.machine, tag_format=1)
    assert inspect_plugin(path, "function") == tag
    assert not marker.exists()


def test_loading_the_same_real_path_twice_returns_the_same_plugin_without_a_second_dlopen(
        broken: Path, tmp_path: Path, dlopen_calls: list[str], marker: Path) -> None:
    path = fresh_copy(broken / "constructor_marker.so", tmp_path)
    link = tmp_path / "link.so"
    link.symlink_to(path)
    first = load_plugin(path, "sink")
    assert load_plugin(path) is first
    assert load_plugin(str(link), "sink") is first
    assert dlopen_calls == [str(path.resolve())]
    assert marker.read_text() == "constructor_marker\n"
    assert first in loaded_plugins()


def test_a_refusal_after_dlopen_is_remembered_not_dlopened_again(
        broken: Path, tmp_path: Path, dlopen_calls: list[str]) -> None:
    path = fresh_copy(broken / "no_entry.so", tmp_path)
    messages = []
    for _ in range(2):
        with pytest.raises(PluginRefused) as refused:
            load_plugin(path)
        messages.append(str(refused.value))
    assert messages[0] == messages[1]
    assert len(dlopen_calls) == 1
    assert load_failures()[str(path.resolve())] == messages[0]


def test_a_refusal_before_dlopen_is_recorded_and_cleared_once_the_file_loads(broken: Path, tmp_path: Path) -> None:
    path = tmp_path / "later.so"
    with pytest.raises(PluginRefused):
        load_plugin(path)
    assert load_failures()[str(path.resolve())] == f"plugin {path} refused: no such file; check the path"
    shutil.copyfile(broken / "abi_minor_older.so", path)
    assert load_plugin(path).name == "abi_minor_older"
    assert str(path.resolve()) not in load_failures()


def test_a_loaded_plugin_is_not_replaced_in_place(broken: Path, tmp_path: Path) -> None:
    path = fresh_copy(broken / "constructor_marker.so", tmp_path)
    load_plugin(path)
    os.unlink(path)
    shutil.copyfile(broken / "abi_minor_older.so", path)
    with pytest.raises(PluginRefused) as refused:
        load_plugin(path)
    assert str(refused.value) == (
        f"plugin {path} refused: the file changed on disk after it was loaded, and a loaded plugin is not "
        "replaced in place; restart the host to load the new file, or install it under a new name")


def test_a_loaded_plugin_asked_for_as_another_kind_is_refused(broken: Path, tmp_path: Path) -> None:
    path = fresh_copy(broken / "constructor_marker.so", tmp_path)
    load_plugin(path, "sink")
    with pytest.raises(PluginRefused) as refused:
        load_plugin(path, "source")
    assert str(refused.value) == (
        f"plugin {path} refused: it is a sink plugin, but it is being loaded as a source; "
        "install it as a sink (plugins/sinks/), or use a source plugin here")


def test_an_unknown_kind_is_a_programming_error(broken: Path) -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        load_plugin(broken / "good_sink.so", "sinks")


def test_check_plugin_reports_instead_of_raising(broken: Path) -> None:
    good = check_plugin(broken / "good_function.so")
    assert good.ok and good.tag is not None and good.tag.name == "good_function"
    described = good.to_dict()
    assert described["functions"][1] == {
        "name": "total", "aggregate": True, "volatile": False, "min_args": 1, "max_args": 1, "args": "1 argument"}
    bad = check_plugin(broken / "no_tag.so")
    assert not bad.ok and bad.refusal is not None and bad.refusal.field == "tag_section"
    assert bad.to_dict()["refused"]["field"] == "tag_section"


def test_host_api_offers_malloc_aligned_memory_and_the_abi() -> None:
    api = host_api()
    assert (api.struct_size, api.abi_major, api.abi_minor) == (ffi.sizeof("plutino_host_api"), 1, 1)
    blocks = [api.alloc(n) for n in (1, 24, 100, 4096, 100_000)]
    try:
        assert all(b != ffi.NULL and int(ffi.cast("uintptr_t", b)) % 16 == 0 for b in blocks)
    finally:
        for b in blocks:
            api.free(b)


def test_each_context_has_its_own_error_buffer_and_instance_id() -> None:
    a = NativeContext(Context(plugin_name="p", rule_id="r1"))
    b = NativeContext(Context(plugin_name="p", instance_id=77))
    assert a.ptr.error_capacity == ERROR_CAPACITY and a.ptr.error != b.ptr.error
    assert ffi.string(a.ptr.rule_id) == b"r1" and ffi.string(a.ptr.plugin_name) == b"p"
    assert b.ptr.instance_id == 77 and a.ptr.instance_id > 0
    assert a.message() == "(the plugin gave no message)"
