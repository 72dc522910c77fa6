"""Rust plugins, first-class: the contract's plutino.rs, plutino_add_rust_plugin() and
`plutino plugin build`, with real cargo builds of native_plugins/examples/rust_strings.

Each build happens once per module, in a copy of the example under a temporary folder (so the
repository gets no target/ or Cargo.lock changes): plain cargo, cargo with fat LTO and
--gc-sections then `strip --strip-all`, CMake, and `plutino plugin build`. cargo is looked up
on PATH and in ~/.cargo/bin (tools/system-deps.sh test installs Debian's when neither has it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import plutino_contract as contract

from .contract_helpers import cmake_configure, read_tag_section, run, unpack_tag

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "native_plugins" / "examples" / "rust_strings"
RUST_FILE = Path(contract.get_rust_dir()) / "plutino.rs"

# The C struct names of plutino.h (as cffi lists them) and their Rust names in plutino.rs.
RUST_NAMES = {
    "ArrowSchema": "ArrowSchema", "ArrowArray": "ArrowArray", "plutino_tag": "Tag",
    "plutino_host_api": "HostApi", "plutino_context": "Context", "plutino_source_api": "SourceApi",
    "plutino_sink_api": "SinkApi", "plutino_function": "Function", "plutino_plugin": "Plugin",
}


def find_cargo() -> str:
    found = shutil.which("cargo")
    rustup = Path.home() / ".cargo" / "bin" / "cargo"
    if found is None and rustup.is_file():
        found = str(rustup)
    if found is None:
        pytest.fail("cargo is not on PATH or in ~/.cargo/bin; the Rust plugin tests need it "
                    "(tools/system-deps.sh test installs it, or https://rustup.rs)")
    return found


def rust_env(target_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a build: cargo's folder first on PATH (rustup's rustc sits beside it),
    the contract's rust dir, a private target dir, and no inherited plugin version."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(find_cargo()).parent), env.get("PATH", "")])
    env["PLUTINO_RUST_DIR"] = contract.get_rust_dir()
    env["CARGO_TARGET_DIR"] = str(target_dir)
    env.pop("PLUTINO_PLUGIN_VERSION", None)
    env.update(extra)
    return env


def copy_example(dest: Path, *, cmake: bool = True) -> Path:
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("target", "build"))
    if not cmake:
        (dest / "CMakeLists.txt").unlink()
    return dest


def cargo_build(src: Path, out: Path, **extra_env: str) -> Path:
    """`cargo build --release --offline` as docs/plugin-rust.md shows it; the cdylib as `out`."""
    target = out.parent / f"{out.stem}-target"
    run([find_cargo(), "build", "--release", "--offline", "--quiet"], cwd=src, env=rust_env(target, **extra_env))
    shutil.copy(target / "release" / "librust_strings.so", out)
    return out


def exported_symbols(path: Path) -> list[str]:
    """Names of the symbols the library defines in .dynsym (what another object can bind to)."""
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        dynsym = ELFFile(f).get_section_by_name(".dynsym")
        return sorted(s.name for s in dynsym.iter_symbols()
                      if s.name and s["st_shndx"] != "SHN_UNDEF"
                      and s["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK"))


# ------------------------------------------------------------------------------ builds

@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rust")


@pytest.fixture(scope="module")
def built(work: Path) -> Path:
    return cargo_build(copy_example(work / "plain"), work / "rust_strings.so")


@pytest.fixture(scope="module")
def lto_stripped(work: Path) -> Path:
    """Built with fat LTO, one codegen unit and an explicit --gc-sections, then stripped."""
    so = cargo_build(copy_example(work / "lto"), work / "lto" / "rust_strings.so",
                     CARGO_PROFILE_RELEASE_LTO="fat", CARGO_PROFILE_RELEASE_CODEGEN_UNITS="1",
                     RUSTFLAGS="-C link-arg=-Wl,--gc-sections")
    run(["strip", "--strip-all", str(so)])
    return so


@pytest.fixture(scope="module")
def cmake_built(work: Path) -> Path:
    """The example's CMakeLists.txt, with its VERSION changed to show that it reaches the tag."""
    src = copy_example(work / "cmake_src")
    lists = src / "CMakeLists.txt"
    lists.write_text(lists.read_text().replace("VERSION 1.0.0", "VERSION 1.2.3"))
    build = work / "cmake_build"
    cmake_configure(src, build, contract.get_cmake_dir())
    run(["cmake", "--build", str(build)])  # plutino_add_rust_plugin sets the cargo environment
    return build / "rust_strings.so"


BUILDS = ["built", "lto_stripped", "cmake_built"]


# ------------------------------------------------------------------------------ the built file

@pytest.mark.parametrize("build", BUILDS)
def test_the_host_checks_the_plugin_and_reads_its_functions(build: str, request: Any) -> None:
    from plutino.native.loader import check_plugin

    so: Path = request.getfixturevalue(build)
    result = check_plugin(so, "function")
    assert result.ok, result.refusal
    report = result.to_dict()
    assert (report["name"], report["kind"]) == ("rust_strings", "function")
    assert report["version"] == ("1.2.3" if build == "cmake_built" else "1.0.0")
    assert {f["name"]: f["aggregate"] for f in report["functions"]} == {
        "rs_reverse": False, "rs_scale": False, "rs_sum": True}


@pytest.mark.parametrize("build", BUILDS)
def test_the_only_exported_symbol_is_the_entry(build: str, request: Any) -> None:
    assert exported_symbols(request.getfixturevalue(build)) == [contract.ENTRY_SYMBOL]


@pytest.mark.parametrize("build", BUILDS)
def test_the_tag_is_in_its_section_8_byte_aligned_with_this_platform(build: str, request: Any) -> None:
    from elftools.elf.elffile import ELFFile

    from plutino.native.tag import host_platform

    so: Path = request.getfixturevalue(build)
    with open(so, "rb") as f:
        section = ELFFile(f).get_section_by_name(contract.TAG_SECTION)
        assert (section["sh_size"], section["sh_addralign"]) == (contract.TAG_SIZE, 8)
        assert section["sh_addr"] % 8 == 0
    tag = unpack_tag(read_tag_section(so))
    host = host_platform()
    assert tag["magic"] == contract.TAG_MAGIC
    assert (tag["tag_size"], tag["tag_format"]) == (contract.TAG_SIZE, contract.TAG_FORMAT)
    assert (tag["abi_major"], tag["abi_minor"]) == (contract.ABI_MAJOR, contract.ABI_MINOR)
    assert (tag["os"], tag["arch"], tag["libc"]) == (host.os, host.arch, host.libc)
    assert (tag["pointer_size"], tag["byte_order"]) == (host.pointer_size, 1 if host.little_endian else 2)
    assert (tag["contract_version"], tag["runtime"], tag["reserved"]) == (contract.__version__, "", b"\0" * 4)


def test_the_stripped_lto_build_really_lost_its_symbol_table(lto_stripped: Path) -> None:
    from elftools.elf.elffile import ELFFile

    with open(lto_stripped, "rb") as f:
        assert ELFFile(f).get_section_by_name(".symtab") is None  # strip ran; the tag stayed


def test_plutino_plugin_check_describes_the_rust_plugin(built: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", "from plutino.cli import main; main()", "plugin", "check",
                           str(built)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "name:      rust_strings" in proc.stdout
    assert "rs_sum (aggregate, 1 argument)" in proc.stdout


# ------------------------------------------------------------------------------ through the engine

@pytest.fixture(scope="module")
def engine(built: Path) -> Any:
    import plutino

    with plutino.Engine(plugins=[built]) as e:
        yield e


@pytest.mark.parametrize("string_type", [pa.string(), pa.large_string()])
def test_rs_reverse_reverses_characters_keeps_nulls_and_the_string_type(engine: Any, string_type: Any) -> None:
    table = pa.table({"s": pa.array(["héllo", None, "", "ab€c", "x"], string_type)})
    out = engine.query("SELECT rs_reverse(s) AS r FROM s", table)
    assert out.schema.field("r").type == string_type
    assert out.column("r").to_pylist() == ["olléh", None, "", "c€ba", "x"]


def test_rs_scale_multiplies_ints_and_floats_by_a_constant_and_keeps_nulls(engine: Any) -> None:
    table = pa.table({"x": [1.5, None, -2.0], "i": pa.array([4, 5, None], pa.int64())})
    out = engine.query("SELECT rs_scale(x, 2) AS a, rs_scale(i, 0.5) AS b, rs_scale(x, i) AS c FROM s", table)
    assert out.to_pylist() == [{"a": 3.0, "b": 2.0, "c": 6.0}, {"a": None, "b": 2.5, "c": None},
                                {"a": -4.0, "b": None, "c": None}]


def test_rs_sum_sums_each_group_skipping_nulls(engine: Any) -> None:
    batch = pa.record_batch({"k": ["a", "b", "a", "c", "b"], "n": pa.array([1, None, 41, None, 7], pa.int64()),
                             "x": [0.5, 1.0, None, None, 2.0]})
    out = engine.query("SELECT k, rs_sum(n) AS n, rs_sum(x) AS x FROM s GROUP BY k, COUNTWINDOW(5)", batch)
    assert sorted(out.to_pylist(), key=lambda r: r["k"]) == [
        {"k": "a", "n": 42, "x": 0.5}, {"k": "b", "n": 7, "x": 3.0}, {"k": "c", "n": None, "x": None}]


def test_an_error_of_the_rust_code_reaches_the_script_with_its_message(engine: Any) -> None:
    from plutino.errors import PluginCallError

    overflow = r"rs_sum: the int64 sum of a group overflows at the value 4611686018427387904"
    with pytest.raises(PluginCallError, match=overflow):
        engine.query("SELECT rs_sum(n) AS n FROM s GROUP BY COUNTWINDOW(2)", pa.table({"n": [2**62, 2**62]}))


def test_validate_refuses_a_wrong_argument_type_by_name(built: Path) -> None:
    from plutino.errors import PluginArgumentError
    from plutino.native.loader import load_plugin

    functions = load_plugin(built, "function").functions
    assert functions["rs_reverse"].validate([pa.large_string()]) == pa.large_string()
    assert functions["rs_scale"].validate([pa.int64(), pa.float64()]) == pa.float64()
    wrong = r"rs_reverse: the argument must be a string, got float64 \(Arrow 'g'\)"
    with pytest.raises(PluginArgumentError, match=wrong):
        functions["rs_reverse"].validate([pa.float64()])
    with pytest.raises(PluginArgumentError, match=r"rs_scale: factor must be an int64 or float64, got string"):
        functions["rs_scale"].validate([pa.float64(), pa.string()])


# ------------------------------------------------------------------------------ plutino.rs against C

def rustc() -> str:
    beside = Path(find_cargo()).parent / "rustc"
    return str(beside) if beside.is_file() else (shutil.which("rustc") or "rustc")


def compile_rust(source: str, work: Path, name: str, *flags: str) -> Path:
    """Compile `source`, which includes plutino.rs as `mod plutino`, into an executable."""
    src, exe = work / f"{name}.rs", work / name
    src.write_text("#[macro_use]\n#[allow(dead_code, unused_macros)]\nmod plutino {\n"
                   f"    include!({json.dumps(str(RUST_FILE))});\n}}\n" + source)
    run([rustc(), "--edition", "2021", *flags, str(src), "-o", str(exe)])
    return exe


def test_every_struct_and_field_of_plutino_rs_sits_where_the_c_compiler_puts_it(work: Path) -> None:
    import cffi

    # cffi's view of the header is checked against gcc's by test_layout.py; compare with it.
    ffi = cffi.FFI()
    ffi.cdef(contract.CDEF)
    structs = sorted(ffi.list_types()[1])
    assert set(structs) == set(RUST_NAMES), "plutino.h has a struct plutino.rs does not bind"
    lines, expected = [], {}
    for c_name in structs:
        ctype, rust = ffi.typeof(f"struct {c_name}"), f"plutino::{RUST_NAMES[c_name]}"
        lines.append(f'println!("{c_name} sizeof {{}}", std::mem::size_of::<{rust}>());')
        lines.append(f'println!("{c_name} alignof {{}}", std::mem::align_of::<{rust}>());')
        expected[f"{c_name} sizeof"], expected[f"{c_name} alignof"] = ffi.sizeof(ctype), ffi.alignof(ctype)
        for field, info in ctype.fields:
            lines.append(f'let (o, s) = plutino_field_extent!({rust}, {field}); '
                         f'println!("{c_name} .{field} {{}} {{}}", o, s);')
            expected[f"{c_name} .{field}"] = (info.offset, ffi.sizeof(info.type))
    lines.append('println!("TagRecord alignof {}", std::mem::align_of::<plutino::TagRecord>());')
    expected["TagRecord alignof"] = 8
    exe = compile_rust("fn main() {\n" + "\n".join(lines) + "\n}\n", work, "layout")
    measured: dict[str, Any] = {}
    for line in run([str(exe)]).stdout.splitlines():
        struct, what, *values = line.split()
        measured[f"{struct} {what}"] = int(values[0]) if len(values) == 1 else (int(values[0]), int(values[1]))
    assert len(measured) > 60
    assert measured == expected


def test_the_constants_of_plutino_rs_equal_the_contracts(work: Path) -> None:
    names = ["ABI_MAJOR", "ABI_MINOR", "TAG_FORMAT", "TAG_SIZE", "KIND_SOURCE", "KIND_SINK", "KIND_FUNCTION",
             "OK", "ERROR", "INVALID", "IO", "NOMEM", "AGAIN", "EOF", "UNSUPPORTED", "LOG_DEBUG", "LOG_INFO",
             "LOG_WARN", "LOG_ERROR", "CONN_CONNECTED", "CONN_CONNECTING", "CONN_DISCONNECTED",
             "FN_AGGREGATE", "FN_VOLATILE"]
    texts = ["CONTRACT_VERSION", "ENTRY_SYMBOL", "TAG_SECTION"]
    body = "\n".join([f'println!("{n} {{}}", plutino::{n});' for n in names + texts])
    exe = compile_rust(f"fn main() {{\n{body}\n}}\n", work, "constants")
    got = dict(line.split(" ", 1) for line in run([str(exe)]).stdout.splitlines())
    want = {n: str(getattr(contract, n)) for n in names}
    want.update(CONTRACT_VERSION=contract.__version__, ENTRY_SYMBOL=contract.ENTRY_SYMBOL,
                TAG_SECTION=contract.TAG_SECTION)
    assert got == want


def test_the_unit_tests_inside_plutino_rs_pass(work: Path) -> None:
    exe = compile_rust("fn main() {}\n", work, "unit", "--test")
    out = run([str(exe)]).stdout
    passed = re.search(r"test result: ok\. (\d+) passed; 0 failed", out)
    assert passed and int(passed.group(1)) >= 6, out


# ------------------------------------------------------------------------------ build paths

def test_plutino_plugin_build_builds_a_cargo_project_where_pack_finds_it(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zipfile

    from plutino.packages.format import pack
    from plutino.packages.scaffold import build_project

    project = copy_example(work / "project", cmake=False)
    monkeypatch.delenv("PLUTINO_PLUGIN_VERSION", raising=False)
    built_files = build_project(project, quiet=True)
    assert built_files == [project / "build" / "rust_strings.so"]
    zip_path = pack(project, work / "rust_strings.zip")
    with zipfile.ZipFile(zip_path) as z:
        assert sorted(z.namelist()) == ["plutino.json", "rust_strings.json", "rust_strings.so"]


def test_a_compile_error_is_reported_with_cargos_message(work: Path) -> None:
    from plutino.packages.format import PackageError
    from plutino.packages.scaffold import build_project

    project = copy_example(work / "broken", cmake=False)
    lib = project / "src" / "lib.rs"
    lib.write_text(lib.read_text().replace("Some(x * f)", "Some(x * undefined_factor)"))
    with pytest.raises(PackageError, match=r"(?s)cargo build of .* failed .*undefined_factor"):
        build_project(project, quiet=True)


def test_without_cargo_the_build_names_the_fix(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plutino.packages.format import PackageError
    from plutino.packages.scaffold import build_project

    project = copy_example(work / "nocargo", cmake=False)
    monkeypatch.setenv("PATH", str(work / "empty-bin"))
    monkeypatch.setenv("HOME", str(work / "empty-home"))
    monkeypatch.delenv("CARGO_HOME", raising=False)
    with pytest.raises(PackageError, match=r"cargo is not on PATH or in ~/.cargo/bin; install Rust: "
                                           r"`apt-get install cargo`"):
        build_project(project, quiet=True)


def path_without_cargo(work: Path) -> str:
    """PATH without cargo: a folder holding cargo is replaced by one linking its other programs
    (so shims, such as pyenv's, and the tools beside cargo keep working)."""
    folders = []
    for n, folder in enumerate(os.environ.get("PATH", "").split(os.pathsep)):
        if not folder or not (Path(folder) / "cargo").exists():
            folders.append(folder)
            continue
        replacement = work / f"path-without-cargo-{n}"
        replacement.mkdir(exist_ok=True)
        for program in Path(folder).iterdir():
            link = replacement / program.name
            if program.name != "cargo" and not os.path.lexists(link):
                link.symlink_to(program)
        folders.append(str(replacement))
    return os.pathsep.join(folders)


def test_cmake_without_cargo_stops_at_configure_naming_the_fix(work: Path) -> None:
    src = copy_example(work / "cmake_nocargo")
    env = dict(os.environ, PATH=path_without_cargo(work), HOME=str(work / "empty-home"))
    env.pop("CARGO_HOME", None)
    proc = subprocess.run(["cmake", "-S", str(src), "-B", str(work / "cmake_nocargo_b"),
                           f"-DPlutinoContract_DIR={contract.get_cmake_dir()}"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    message = " ".join(proc.stderr.split())
    assert "plutino_add_rust_plugin(rust_strings): cargo was not found on PATH or in $HOME/.cargo/bin" in message
    assert "apt-get install cargo" in message and "-DPLUTINO_CARGO_EXECUTABLE=" in message


def test_the_rust_dir_is_printed_by_the_contract_module() -> None:
    proc = subprocess.run([sys.executable, "-m", "plutino_contract", "--rust-dir"], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout) == (0, contract.get_rust_dir() + "\n")
    assert (Path(proc.stdout.strip()) / "plutino.rs").is_file()


def test_the_example_lock_file_is_readable_by_debian_bookworms_cargo() -> None:
    # cargo 0.66 (Rust 1.63) reads lock files up to version 3; newer cargo keeps a file's version.
    assert re.search(r"^version = 3$", (EXAMPLE / "Cargo.lock").read_text(), re.M)
    assert 'rust-version = "1.63"' in (EXAMPLE / "Cargo.toml").read_text()


def test_the_doc_example_compiles_into_a_plugin_the_host_accepts(work: Path) -> None:
    from plutino.native.loader import check_plugin

    doc = (ROOT / "docs" / "plugin-rust.md").read_text()
    blocks = re.findall(r"```rust\n(.*?)```", doc, re.S)
    assert len(blocks) >= 2, "docs/plugin-rust.md no longer has the module and function examples"
    src, so = work / "doc_example.rs", work / "doc_example.so"
    src.write_text(blocks[0] + blocks[1])
    env = rust_env(work / "unused", CARGO_PKG_VERSION="0.4.2")
    run([rustc(), "--edition", "2021", "--crate-type", "cdylib", "--crate-name", "doc_example", str(src),
         "-o", str(so)], env=env)
    result = check_plugin(so, "function")
    assert result.ok, result.refusal
    assert (result.tag.name, result.tag.version) == ("rust_strings", "0.4.2")
    assert [f["name"] for f in result.to_dict()["functions"]] == ["rs_reverse"]
