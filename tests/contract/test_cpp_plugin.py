"""C++ plugins are first-class: plutino.hpp, plutino_add_plugin for C++, one exported symbol.

native_plugins/examples/cpp_text (a C++17 function library: title_case, parse_int, the
aggregate mean_length) is built once, as its own CMake project, the way a plugin author builds
it. It must export only plutino_plugin_v1, pass the host's check and compute through the real
engine, where an exception thrown for bad input is the function's error message. Built without
the contract's version script it exports std:: templates, and export_warnings() says so.
plutino.hpp's guard and builders are also run in a small program under ASan and UBSan.
Plugins of every language the CMake package builds (C, Cython) export only the entry too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

import plutino
import plutino_contract as contract
from plutino.engine import SqlError
from plutino.errors import PluginCallError
from plutino.native.exports import export_warnings, extra_exports
from plutino.native.loader import check_plugin, load_plugin
from plutino_contract.protocols import Context

from .contract_helpers import require_tool, run

EXAMPLE = Path(__file__).resolve().parents[2] / "native_plugins" / "examples" / "cpp_text"


def defined_dynamic_symbols(so: Path) -> list[str]:
    require_tool("nm")
    out = run(["nm", "-D", "--defined-only", str(so)]).stdout
    return sorted(line.split()[-1] for line in out.splitlines() if line.strip())


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """native_plugins/examples/cpp_text built with the contract's CMake package (once)."""
    require_tool("cmake")
    require_tool("g++")
    build = tmp_path_factory.mktemp("cpp_text")
    cmd = ["cmake", "-S", str(EXAMPLE), "-B", str(build), f"-DPlutinoContract_DIR={contract.get_cmake_dir()}",
           "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON"]
    if shutil.which("ninja"):
        cmd += ["-G", "Ninja"]
    run(cmd)
    run(["cmake", "--build", str(build), "-j2"])
    return build


@pytest.fixture(scope="module")
def so(build_dir: Path) -> Path:
    return build_dir / "cpp_text.so"


@pytest.fixture(scope="module")
def engine(so: Path):
    with plutino.Engine(plugins=[so]) as e:
        yield e


# ---------------------------------------------------------------- the build


def test_plutino_add_plugin_compiles_cpp17_with_warnings_and_hidden_inlines(build_dir: Path) -> None:
    commands = json.loads((build_dir / "compile_commands.json").read_text())
    [cpp] = [c["command"] for c in commands if c["file"].endswith("cpp_text.cpp")]
    for flag in ("-std=c++17", "-Wall", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-fPIC"):
        assert flag in cpp.split(), f"{flag} missing from: {cpp}"


def test_the_cpp_plugin_exports_only_its_entry(so: Path) -> None:
    assert defined_dynamic_symbols(so) == [contract.ENTRY_SYMBOL]
    assert extra_exports(so) == []
    assert export_warnings(so) == []


def test_the_cpp_plugin_passes_the_hosts_check(so: Path) -> None:
    check = check_plugin(so, "function")
    assert check.ok, check.refusal
    info = check.to_dict()
    assert (info["name"], info["version"], info["kind"]) == ("cpp_text", "1.0.0", "function")
    functions = {f["name"]: f for f in info["functions"]}
    assert sorted(functions) == ["mean_length", "parse_int", "title_case"]
    assert functions["mean_length"]["aggregate"] and not functions["parse_int"]["aggregate"]
    assert (functions["parse_int"]["min_args"], functions["parse_int"]["max_args"]) == (1, 2)
    assert not info.get("warnings")


def test_the_metadata_lists_the_functions_the_library_offers(so: Path) -> None:
    meta = json.loads((EXAMPLE / "cpp_text.json").read_text())
    assert sorted(f["name"] for f in meta["functions"]) == sorted(load_plugin(so).functions)


# ---------------------------------------------------------------- through the engine

TABLE = pa.table({"k": ["a", "b", "a", "b"],
                  "name": ["hello wORLD", None, "dña 3rd-x", "x"],
                  "code": ["ff", " -10 ", None, "+7"]})


def test_scalar_functions_compute_through_the_engine(engine) -> None:
    out = engine.query("SELECT title_case(name) AS t, parse_int(code, 16) AS h, parse_int('  42 ') AS d FROM s",
                       TABLE)
    assert out.to_pylist() == [
        {"t": "Hello World", "h": 255, "d": 42},
        {"t": None, "h": -16, "d": 42},
        {"t": "Dña 3rd-X", "h": None, "d": 42},
        {"t": "X", "h": 7, "d": 42},
    ]


def test_the_aggregate_gives_one_value_per_group_and_null_for_a_group_without_strings(engine) -> None:
    out = engine.query("SELECT k, mean_length(name) AS m FROM s GROUP BY k, COUNTWINDOW(4)", TABLE)
    # "hello wORLD" 11 and "dña 3rd-x" 9 characters (ñ is two bytes, one character); b: only "x"
    assert sorted(out.to_pylist(), key=lambda r: r["k"]) == [{"k": "a", "m": 10.0}, {"k": "b", "m": 1.0}]
    out = engine.query("SELECT mean_length(name) AS m FROM s GROUP BY COUNTWINDOW(1)",
                       pa.table({"name": pa.array([None, "ab"], pa.string())}))
    assert out.to_pylist() == [{"m": None}, {"m": 2.0}]


def test_an_exception_thrown_for_bad_input_is_the_functions_error_message(engine) -> None:
    with pytest.raises(PluginCallError) as err:
        engine.query("SELECT parse_int(name) AS x FROM s", TABLE)
    assert "plugin 'cpp_text'" in str(err.value)
    assert "parse_int: 'hello wORLD' is not an integer in base 10" in str(err.value)
    with pytest.raises(PluginCallError, match="parse_int: base must be between 2 and 36, got 1"):
        engine.query("SELECT parse_int(code, 1) AS x FROM s", TABLE)
    # the plugin is intact after the exceptions
    assert engine.query("SELECT parse_int('101', 2) AS x FROM s", TABLE.slice(0, 1)).to_pylist() == [{"x": 5}]


def test_a_wrong_argument_type_is_a_sql_error_from_validate(engine) -> None:
    with pytest.raises(SqlError, match="title_case: argument 1 must be a string, got Arrow type 'l'"):
        engine.query("SELECT title_case(5) AS x FROM s", TABLE)


# ---------------------------------------------------------------- arguments, as plutino::Arg reads them


def call(so: Path, name: str, *args: pa.Array, length: int) -> list:
    inst = load_plugin(so).functions[name].create(Context(plugin_name="cpp_text"))
    try:
        return inst.call(list(args), length).to_pylist()
    finally:
        inst.close()


def test_large_strings_sliced_arrays_and_constant_arguments_are_read(so: Path) -> None:
    large = pa.array(["skip", "one two", None, "10"], pa.large_string()).slice(1)
    assert call(so, "title_case", large, length=3) == ["One Two", None, "10"]
    codes = pa.array(["zz", "11", None, "z"]).slice(1)
    assert call(so, "parse_int", codes, pa.array([36]), length=3) == [37, None, 35]
    assert call(so, "parse_int", pa.array(["7"]), pa.array([8, None, 10]), length=3) == [7, None, 7]


def test_out_of_range_is_an_error_naming_the_value(so: Path) -> None:
    with pytest.raises(PluginCallError, match="parse_int: '99999999999999999999' is out of the int64 range"):
        call(so, "parse_int", pa.array(["1", "99999999999999999999"]), length=2)


# ---------------------------------------------------------------- without the version script


@pytest.fixture(scope="module")
def leaky_so(include_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same source built by hand without the version script: hidden visibility and hidden
    inlines, yet libstdc++'s std:: templates (declared visibility("default")) are exported."""
    require_tool("g++")
    out = tmp_path_factory.mktemp("leaky") / "cpp_text.so"
    run(["g++", "-std=c++17", "-shared", "-fPIC", "-O2", "-fvisibility=hidden", "-fvisibility-inlines-hidden",
         f"-I{include_dir}", str(EXAMPLE / "cpp_text.cpp"), "-o", str(out)])
    return out


def test_without_the_version_script_std_templates_are_exported(leaky_so: Path) -> None:
    extra = extra_exports(leaky_so)
    assert extra and all(name.startswith("_Z") for name in extra), extra
    assert contract.ENTRY_SYMBOL not in extra


def test_extra_exports_get_one_warning_with_names_count_and_fix(leaky_so: Path) -> None:
    extra = extra_exports(leaky_so)
    [warning] = export_warnings(leaky_so)
    assert f"it exports {len(extra)} symbols besides its entry {contract.ENTRY_SYMBOL}" in warning
    assert "std::" in warning  # demangled when c++filt is at hand, otherwise the _Z names
    if len(extra) > 5:
        assert f"and {len(extra) - 5} more" in warning
    assert "plutino_add_plugin()" in warning
    assert f"-Wl,--version-script={Path(contract.get_cmake_dir()) / 'plutino_plugin.map'}" in warning


def test_plugin_check_reports_the_warning(leaky_so: Path) -> None:
    check = check_plugin(leaky_so, "function")
    assert check.ok, check.refusal  # a warning, not a refusal: the host loads plugins RTLD_LOCAL
    assert check.to_dict().get("warnings") == export_warnings(leaky_so)


# ---------------------------------------------------------------- every language exports only the entry


@pytest.mark.parametrize("name", ["geo", "echo"], ids=["cython", "c"])
def test_bundled_plugins_export_only_the_entry(plugin_build: Path, name: str) -> None:
    """geo is Cython: without the version script it would export PyInit_geo as well."""
    so = plugin_build / "functions" / f"{name}.so"
    assert defined_dynamic_symbols(so) == [contract.ENTRY_SYMBOL]
    assert export_warnings(so) == []


# ---------------------------------------------------------------- plutino.hpp on its own

HPP_PROGRAM = r"""
#include <cstdio>
#include <stdexcept>
#include <string>
#include "plutino/plutino.hpp"

static char buf[32];
static plutino_context ctx;
static void show(plutino_status st) { std::printf("%d|%s\n", (int)st, buf); buf[0] = '\0'; }

int main() {
  ctx.struct_size = sizeof ctx;
  ctx.error = buf;
  ctx.error_capacity = sizeof buf;
  show(plutino::guard(&ctx, "f", []() -> plutino_status { throw plutino::Error("bad value 7", PLUTINO_INVALID); }));
  show(plutino::guard(&ctx, "f", []() -> plutino_status { throw std::bad_alloc(); }));
  show(plutino::guard(&ctx, "f", []() -> plutino_status { throw std::out_of_range("index 9"); }));
  show(plutino::guard(&ctx, []() -> plutino_status { throw 42; }));
  show(plutino::guard(&ctx, "f", []() -> plutino_status { throw std::runtime_error(std::string(60, 'x')); }));
  show(plutino::guard(&ctx, "f", [] { return PLUTINO_OK; }));

  // a null, then rows past the bitmap's first byte; no row hint
  plutino::Int64Builder ints;
  ints.append_null();
  for (int i = 1; i < 20; i++) ints.append(i);
  ArrowArray a;
  ArrowSchema s;
  ints.finish(&a, &s);
  const uint8_t* bits = static_cast<const uint8_t*>(a.buffers[0]);
  const int64_t* v = static_cast<const int64_t*>(a.buffers[1]);
  std::printf("%s %lld %lld %02x%02x%02x %lld\n", s.format, (long long)a.length, (long long)a.null_count,
              bits[0], bits[1], bits[2], (long long)v[19]);
  a.release(&a);
  s.release(&s);

  plutino::Utf8Builder strs;
  strs.append("ab");
  strs.append_null();
  strs.append("");
  strs.append("cde");
  strs.finish(&a, nullptr);
  const int32_t* off = static_cast<const int32_t*>(a.buffers[1]);
  std::printf("%lld %lld %d,%d,%d,%d,%d %.5s %02x\n", (long long)a.length, (long long)a.null_count, off[0], off[1],
              off[2], off[3], off[4], static_cast<const char*>(a.buffers[2]),
              static_cast<const uint8_t*>(a.buffers[0])[0]);
  a.release(&a);

  plutino::Float64Builder none;  // no rows, no nulls: no bitmap, a values buffer all the same
  none.finish(&a, &s);
  std::printf("%s %lld %d %d\n", s.format, (long long)a.length, a.buffers[0] == nullptr, a.buffers[1] != nullptr);
  a.release(&a);
  s.release(&s);

  { plutino::Utf8Builder dropped(4); dropped.append("never finished"); }  // RAII: freed, no leak
  plutino::set_type(&s, "u");
  std::printf("%s %d\n", s.format, s.release != nullptr);
  s.release(&s);
  return 0;
}
"""


def test_plutino_hpp_guard_and_builders_under_asan(include_dir: Path, tmp_path: Path) -> None:
    require_tool("g++")
    src, exe = tmp_path / "hpp.cpp", tmp_path / "hpp"
    src.write_text(HPP_PROGRAM)
    run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Wshadow", "-Werror",
         "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", f"-I{include_dir}",
         str(src), "-o", str(exe)])
    lines = run([str(exe)], env={"ASAN_OPTIONS": "detect_leaks=1"}).stdout.splitlines()
    assert lines == [
        f"{contract.INVALID}|f: bad value 7",
        f"{contract.NOMEM}|f: out of memory",
        f"{contract.ERROR}|f: index 9",
        f"{contract.ERROR}|unknown C++ exception",
        f"{contract.ERROR}|f: " + "x" * 28,  # cut to the 32-byte error buffer
        f"{contract.OK}|",
        "l 20 1 feffff 19",  # padding bits past row 19 are set
        "4 1 0,2,2,2,5 abcde fd",
        "g 0 1 1",
        "u 1",
    ]
