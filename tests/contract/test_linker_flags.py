"""The tag survives the linker settings plugins are built with, and only ELF files are plugins.

tests/contract/plugins/tiny.c is built with gcc directly (and with clang when installed) under
the flags that delete unreferenced sections: ``-ffunction-sections -fdata-sections
-Wl,--gc-sections``, ``-flto -Wl,--gc-sections``, the contract's version script, the usual
hardening flags, then ``strip --strip-all``. Each build must keep its ``.plutino_tag`` section and pass the host's
check (``plutino.native.loader.check_plugin``, what ``plutino plugin check`` runs). A control
shows the flags really collect garbage here: a section marked only ``used`` is gone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest

import plutino_contract as contract
from plutino.native.loader import check_plugin, load_plugin
from plutino_contract.protocols import Context

from .contract_helpers import PLUGINS_DIR, read_tag_section, require_tool, run, unpack_tag

GC = ("-ffunction-sections", "-fdata-sections", "-Wl,--gc-sections")
LTO = ("-flto", "-Wl,--gc-sections")
VERSION_SCRIPT = f"-Wl,--version-script={Path(contract.get_cmake_dir()) / 'plutino_plugin.map'}"

BUILDS = {
    "gc_sections": GC,
    "lto": LTO,
    "lto_gc_sections_version_script": (*LTO, *GC[:2], VERSION_SCRIPT),
    "hardened": ("-O3", "-Wl,--as-needed", "-Wl,-z,relro,-z,now", VERSION_SCRIPT),
}


def build(include_dir: Path, out: Path, flags: tuple[str, ...], compiler: str = "gcc",
          source: Path = PLUGINS_DIR / "tiny.c") -> Path:
    require_tool(compiler)
    run([compiler, "-shared", "-fPIC", "-fvisibility=hidden", "-O2", f"-I{include_dir}",
         "-DPLUTINO_PLUGIN_VERSION=\"1.2.3\"", *flags, str(source), "-o", str(out)])
    return out


def strip_all(so: Path, out: Path) -> Path:
    require_tool("strip")
    run(["strip", "--strip-all", str(so), "-o", str(out)])
    return out


@pytest.fixture(scope="module")
def plugins(include_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every build of tiny.so, made once: name -> path (each its own file, as the loader
    remembers plugins by path)."""
    work = tmp_path_factory.mktemp("linker_flags")
    built = {name: build(include_dir, work / f"{name}.so", flags) for name, flags in BUILDS.items()}
    for name in list(built):
        built[f"{name}_stripped"] = strip_all(built[name], work / f"{name}_stripped.so")
    return built


ALL = [*BUILDS, *(f"{name}_stripped" for name in BUILDS)]


@pytest.mark.parametrize("name", ALL)
def test_the_tag_section_survives(plugins: dict[str, Path], name: str) -> None:
    tag = unpack_tag(read_tag_section(plugins[name]))
    assert (tag["magic"], tag["name"], tag["plugin_version"]) == (contract.TAG_MAGIC, "tiny", "1.2.3")


@pytest.mark.parametrize("name", ALL)
def test_the_plugin_passes_the_hosts_check(plugins: dict[str, Path], name: str) -> None:
    check = check_plugin(plugins[name], "function")
    assert check.ok, check.refusal
    assert check.to_dict()["name"] == "tiny"
    assert [f["name"] for f in check.to_dict()["functions"]] == ["plus_one"]


def test_the_stripped_lto_build_still_computes(plugins: dict[str, Path]) -> None:
    plugin = load_plugin(plugins["lto_gc_sections_version_script_stripped"], "function")
    inst = plugin.functions["plus_one"].create(Context(plugin_name="tiny"))
    try:
        assert inst.call([pa.array([1, None, 41])], 3).to_pylist() == [2, None, 42]
    finally:
        inst.close()


def test_control_a_section_kept_only_by_used_is_collected(tmp_path: Path, include_dir: Path) -> None:
    """Without `retain` and a reference, these flags do delete the section: the tests above
    would catch a header that lost either."""
    src = tmp_path / "used_only.c"
    src.write_text('__attribute__((used, section(".plutino_tag"))) static const char tag[192] = "PLUTINO";\n'
                   '__attribute__((visibility("default"))) int entry(void) { return 0; }\n')
    so = build(include_dir, tmp_path / "used_only.so", GC, source=src)
    from elftools.elf.elffile import ELFFile

    with open(so, "rb") as f:
        assert ELFFile(f).get_section_by_name(contract.TAG_SECTION) is None


@pytest.mark.parametrize("flags", [GC, LTO], ids=["gc_sections", "lto"])
def test_clang_builds_keep_the_tag_too(flags: tuple[str, ...], tmp_path: Path, include_dir: Path) -> None:
    if shutil.which("clang") is None:
        pytest.skip("clang is not installed")
    if "-flto" in flags:
        # clang's LTO objects are LLVM bitcode, which GNU ld reads only through LLVMgold.so
        if shutil.which("ld.lld") is None:
            pytest.skip("clang -flto needs lld (ld.lld), which is not installed")
        flags = (*flags, "-fuse-ld=lld")
    name = "clang_" + ("lto" if "-flto" in flags else "gc")
    so = strip_all(build(include_dir, tmp_path / f"{name}.so", flags, compiler="clang"),
                   tmp_path / f"{name}_stripped.so")
    assert unpack_tag(read_tag_section(so))["name"] == "tiny"
    check = check_plugin(so, "function")
    assert check.ok, check.refusal


# ---------------------------------------------------------------- not ELF: refused by name

MACHO = bytes.fromhex("cffaedfe") + bytes.fromhex("07000001 03000000 06000000".replace(" ", "")) + bytes(64)
PE = b"MZ\x90\x00" + bytes(60) + b"PE\0\0" + bytes(32)


@pytest.mark.parametrize(("content", "suffix", "fmt"), [(MACHO, ".dylib", "Mach-O"), (PE, ".dll", "PE")],
                         ids=["mach-o", "pe"])
def test_a_mach_o_or_pe_file_is_refused_naming_its_format(content: bytes, suffix: str, fmt: str,
                                                         tmp_path: Path) -> None:
    path = tmp_path / f"plugin{suffix}"
    path.write_bytes(content)
    check = check_plugin(path)
    assert not check.ok
    message = str(check.refusal)
    assert fmt in message
    assert "ABI 1 plugins are ELF shared objects" in message
