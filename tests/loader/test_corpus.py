"""The broken-plugin corpus: each case is refused (or accepted) with its exact message.

Every fixture in native_plugins/broken has a constructor that writes a marker file when
dlopen runs it. A case refused before dlopen must leave no marker: the host ran none of
its code. A case that reaches dlopen writes it, which shows the marker works.
Each case loads a fresh copy of its file, so dlopen never finds it already loaded.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

from plutino.errors import PluginCallError, PluginRefused
from plutino.native.loader import inspect_plugin, load_plugin
from plutino.native.tag import host_platform
from plutino_contract.protocols import Context

from .loader_helpers import TAG_FIELD_OFFSETS, fresh_copy, patch_bytes, tag_offset

HOST = host_platform()
REBUILD_HOST = f"rebuild the plugin for this host ({HOST.describe()})"
DECLARE = "rebuild the plugin with PLUTINO_DECLARE_SOURCE/SINK/FUNCTIONS from plutino.h"
OTHER_MACHINE = ("EM_AARCH64", 183) if HOST.machine != "EM_AARCH64" else ("EM_X86_64", 62)
OTHER_ARCH = "aarch64" if HOST.arch != "aarch64" else "x86_64"
ENDIAN = "<" if HOST.little_endian else ">"


@dataclass
class Case:
    id: str
    make: Callable[[Path, Path], Path]   # (corpus dir, tmp dir) -> the file to load
    message: str | None                  # None: accepted
    before_dlopen: bool = True           # refused without running plugin code
    kind: str | None = None
    host_abi: tuple[int, int] | None = None
    constructor: str = ""                # the fixture whose constructor runs when dlopen does


def corpus(name: str) -> Callable[[Path, Path], Path]:
    return lambda broken, tmp: fresh_copy(broken / f"{name}.so", tmp)


def written(data: bytes, name: str = "plugin.so") -> Callable[[Path, Path], Path]:
    def make(broken: Path, tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data)
        return path
    return make


def patched(offset: int, data: bytes, base: str = "constructor_marker") -> Callable[[Path, Path], Path]:
    """A copy of a good plugin with bytes changed at a file offset (negative: from the tag)."""
    def make(broken: Path, tmp: Path) -> Path:
        path = fresh_copy(broken / f"{base}.so", tmp)
        patch_bytes(path, offset if offset >= 0 else tag_offset(path) + (-offset - 1), data)
        return path
    return make


def tag_field(field: str, data: bytes) -> Callable[[Path, Path], Path]:
    return patched(-(TAG_FIELD_OFFSETS[field] + 1), data)


def text(s: str, size: int) -> bytes:
    return s.encode().ljust(size, b"\0")


def u16(v: int) -> bytes:
    return struct.pack(ENDIAN + "H", v)


def directory(broken: Path, tmp: Path) -> Path:
    (tmp / "a_dir.so").mkdir()
    return tmp / "a_dir.so"


CASES = [
    # ---- not a plugin file at all
    Case("missing_file", lambda b, t: t / "nowhere.so", "plugin {path} refused: no such file; check the path"),
    Case("directory", directory,
         "plugin {path} refused: not a regular file (a directory); give the path of the plugin's .so file"),
    Case("zero_byte_file", written(b""),
         "plugin {path} refused: the file is empty (0 bytes), not an ELF shared object; "
         "rebuild the plugin or copy the file again"),
    Case("text_file", written(b"hello plutino\n", "notes.so"),
         "plugin {path} refused: not an ELF file (it starts with 68 65 6c 6c, an ELF file starts with "
         f"7f 45 4c 46); give the path of a plugin .so built for {HOST.describe()}"),
    # ---- an ELF file, but not for this host
    Case("other_machine", patched(18, u16(OTHER_MACHINE[1])),
         f"plugin {{path}} refused: built for machine {OTHER_MACHINE[0]}, this host is {HOST.machine}; {REBUILD_HOST}"),
    Case("elf_32_bit_class", patched(4, b"\x01"),
         "plugin {path} refused: ELF class is ELFCLASS32 (32-bit), this host is ELFCLASS64 (64-bit); "
         + REBUILD_HOST),
    Case("elf_other_byte_order", patched(5, b"\x02" if HOST.little_endian else b"\x01"),
         "plugin {path} refused: ELF byte order is big-endian, this host is little-endian; " + REBUILD_HOST
         if HOST.little_endian else
         "plugin {path} refused: ELF byte order is little-endian, this host is big-endian; " + REBUILD_HOST),
    Case("elf_executable", patched(16, u16(2)),
         "plugin {path} refused: ELF type is ET_EXEC (an executable), a plugin must be ET_DYN (a shared object); "
         "build it as a shared library with plutino_add_plugin() from plutino-contract"),
    # ---- the tag
    Case("no_tag", corpus("no_tag"),
         "plugin {path} refused: no .plutino_tag section, so it was not built as a Plutino plugin "
         f"(or the section was stripped); {DECLARE}"),
    Case("bad_magic", corpus("bad_magic"),
         f"plugin {{path}} refused: tag magic is 'NOTPLUG', expected 'PLUTINO'; {DECLARE}"),
    Case("tag_format_unknown", tag_field("tag_format", u16(2)),
         "plugin {path} refused: tag format is 2, this host reads tag format 1; "
         "rebuild the plugin against plutino-contract 1.x or upgrade the host"),
    Case("tag_size_wrong", tag_field("tag_size", u16(100)),
         f"plugin {{path}} refused: tag_size is 100, a format-1 tag is 192 bytes; {DECLARE}"),
    Case("tag_byte_order_disagrees", tag_field("byte_order", b"\x02" if HOST.little_endian else b"\x01"),
         ("plugin {path} refused: tag byte_order is 2, but the ELF file is little-endian (1); " if HOST.little_endian
          else "plugin {path} refused: tag byte_order is 1, but the ELF file is big-endian (2); ") + DECLARE),
    Case("abi_major_too_new", corpus("abi_major_too_new"),
         "plugin {path} refused: built for ABI 2.0, this host speaks ABI 1.1 (plutino-contract 1.x); "
         "rebuild the plugin against plutino-contract 1.x"),
    Case("abi_minor_too_new", corpus("abi_minor_too_new"),
         "plugin {path} refused: built for ABI 1.2, this host speaks ABI 1.1 (plutino-contract 1.x) and loads "
         "plugins built for ABI 1.0 to 1.1; upgrade the host to one speaking ABI 1.2, or rebuild the plugin "
         "against plutino-contract 1.1"),
    Case("abi_minor_too_new_for_host_1_2", tag_field("abi_minor", u16(3)),
         "plugin {path} refused: built for ABI 1.3, this host speaks ABI 1.2 (plutino-contract 1.x) and loads "
         "plugins built for ABI 1.0 to 1.2; upgrade the host to one speaking ABI 1.3, or rebuild the plugin "
         "against plutino-contract 1.2", host_abi=(1, 2)),
    Case("kind_source_declared", corpus("kind_source_declared"),
         "plugin {path} refused: it is a source plugin, but it is being loaded as a sink; "
         "install it as a source (plugins/sources/), or use a sink plugin here", kind="sink"),
    Case("kind_unknown", tag_field("kind", b"\x09"),
         f"plugin {{path}} refused: tag kind is 9, expected 1 (source), 2 (sink) or 3 (function); {DECLARE}"),
    Case("name_invalid", tag_field("name", text("bad name!", 64)),
         "plugin {path} refused: tag name 'bad name!' is not a valid plugin name (1 to 63 letters, digits, "
         "'-' or '_'); rename the plugin in its PLUTINO_DECLARE_* line and rebuild"),
    Case("name_empty", tag_field("name", text("", 64)),
         "plugin {path} refused: tag name '' is not a valid plugin name (1 to 63 letters, digits, "
         "'-' or '_'); rename the plugin in its PLUTINO_DECLARE_* line and rebuild"),
    Case("pointer_size_4", tag_field("pointer_size", b"\x04"),
         f"plugin {{path}} refused: built with 4-byte pointers, this host uses 8-byte pointers; {REBUILD_HOST}"),
    Case("os_darwin", tag_field("os", text("darwin", 12)),
         f"plugin {{path}} refused: built for OS 'darwin', this host is '{HOST.os}'; {REBUILD_HOST}"),
    Case("arch_other", tag_field("arch", text(OTHER_ARCH, 16)),
         f"plugin {{path}} refused: built for arch '{OTHER_ARCH}', this host is '{HOST.arch}'; {REBUILD_HOST}"),
    Case("libc_other", tag_field("libc", text("musl" if HOST.libc != "musl" else "glibc", 16)),
         f"plugin {{path}} refused: built for libc '{'musl' if HOST.libc != 'musl' else 'glibc'}', "
         f"this host is '{HOST.libc}'; {REBUILD_HOST}"),
    # ---- accepted
    Case("abi_minor_older_accepted", corpus("abi_minor_older"), None, before_dlopen=False,
         constructor="abi_minor_older"),
    Case("abi_minor_too_new_accepted_by_host_1_2", corpus("abi_minor_too_new"), None, before_dlopen=False,
         host_abi=(1, 2), constructor="abi_minor_too_new"),
    Case("constructor_marker", corpus("constructor_marker"), None, before_dlopen=False,
         constructor="constructor_marker"),
    # ---- refused after dlopen, from the descriptor
    Case("no_entry", corpus("no_entry"),
         f"plugin {{path}} refused: it has a tag but no entry symbol plutino_plugin_v1(); {DECLARE} "
         "(they define the entry; keep it exported)", before_dlopen=False, constructor="no_entry"),
    Case("tag_descriptor_mismatch", corpus("tag_descriptor_mismatch"),
         "plugin {path} refused: its tag says name 'tag_descriptor_mismatch' but its descriptor says "
         "'another_name'; rebuild the plugin: its tag and descriptor must come from the same PLUTINO_DECLARE_* line",
         before_dlopen=False, constructor="tag_descriptor_mismatch"),
    Case("struct_size_too_small", corpus("struct_size_too_small"),
         "plugin {path} refused: its descriptor's struct_size is 16 bytes, "
         "but ABI 1.1 (the ABI its tag names) defines a 64-byte "
         f"plutino_plugin; {DECLARE}", before_dlopen=False, constructor="struct_size_too_small"),
    Case("missing_callback", corpus("missing_callback"),
         "plugin {path} refused: its plutino_source_api has no next() callback, which every source must "
         "implement; implement next() and rebuild", before_dlopen=False, constructor="missing_callback"),
    Case("dup_function", corpus("dup_function"),
         "plugin {path} refused: it exports two functions named 'twice' (entries 0 and 1; SQL names are "
         "case-insensitive); rename or remove one of them and rebuild", before_dlopen=False,
         constructor="dup_function"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus_case_is_refused_or_accepted_with_its_exact_message(
        case: Case, broken: Path, tmp_path: Path, marker: Path) -> None:
    (tmp_path / "plugins").mkdir()
    path = case.make(broken, tmp_path / "plugins")
    expected = case.message.format(path=path) if case.message else None

    if case.before_dlopen:
        with pytest.raises(PluginRefused) as inspected:
            inspect_plugin(path, case.kind, host_abi=case.host_abi)
        assert str(inspected.value) == expected
    else:
        assert inspect_plugin(path, case.kind, host_abi=case.host_abi).path == str(path)

    if expected is None:
        plugin = load_plugin(path, case.kind, host_abi=case.host_abi)
        assert plugin.path == str(path.resolve())
    else:
        with pytest.raises(PluginRefused) as refused:
            load_plugin(path, case.kind, host_abi=case.host_abi)
        assert str(refused.value) == expected
        assert "\n" not in expected

    if case.before_dlopen:
        assert not marker.exists(), "a plugin refused before dlopen ran its constructor"
    else:
        assert marker.read_text() == f"{case.constructor}\n"


def test_refusal_names_field_and_both_values(broken: Path, tmp_path: Path) -> None:
    with pytest.raises(PluginRefused) as refused:
        inspect_plugin(fresh_copy(broken / "abi_major_too_new.so", tmp_path))
    r = refused.value
    assert (r.field, r.plugin_value, r.host_value) == ("abi_major", (2, 0), (1, 1))
    assert r.fix == "rebuild the plugin against plutino-contract 1.x"


def test_create_failure_raises_the_plugins_message_and_the_host_carries_on(broken: Path) -> None:
    plugin = load_plugin(broken / "create_fails.so", "sink")
    for _ in range(2):
        with pytest.raises(PluginCallError) as failed:
            plugin.create({"path": ""}, Context(plugin_name="create_fails"))
        assert str(failed.value) == (
            "plugin 'create_fails': sink create failed (PLUTINO_INVALID): "
            "path is required; set \"path\" in the action's properties")
        assert (failed.value.plugin, failed.value.call, failed.value.status) == (
            "create_fails", "sink create", "PLUTINO_INVALID")


def test_function_error_mid_batch_raises_then_the_next_batch_works(broken: Path) -> None:
    plugin = load_plugin(broken / "function_error_mid_batch.so", "function")
    inst = plugin.functions["checked_half"].create(Context(plugin_name="function_error_mid_batch"))
    with pytest.raises(PluginCallError) as failed:
        inst.call([pa.array([4.0, 2.0, -4.0, 8.0])], 4)
    assert str(failed.value) == (
        "plugin 'function_error_mid_batch': function 'checked_half' call failed (PLUTINO_INVALID): "
        "checked_half: row 2 holds -4; only values >= 0 are allowed")
    assert inst.call([pa.array([4.0, None, 8.0])], 3).to_pylist() == [2.0, None, 4.0]
    inst.close()
