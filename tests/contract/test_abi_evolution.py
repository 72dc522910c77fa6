"""The versioning promise, shown with real builds against a grown header.

The test grows plutino.h to an ABI 1.1 (a test-only copy: a field appended to plutino_plugin
and one to plutino_host_api, each marked ``since 1.1``) and builds the same plugin source three
ways: against the real 1.0 header, against the grown header, and against the grown header
targeting 1.0 (PLUTINO_TARGET_ABI_MINOR 0). Then:
- this host (1.0) loads the 1.0 plugin, refuses the 1.1 plugin naming both versions, and loads
  the 1.1-header plugin that targets 1.0, whose check of the host's new field says absent;
- a host speaking the grown 1.1 (its layout built from the grown header) loads all three and
  reads the new descriptor field only from the plugins that have it: a 1.0 plugin's struct is
  widened with zeros, never read past its struct_size.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

import plutino
from plutino.errors import PluginRefused
from plutino.native.abi import HOST_ABI, HOST_LAYOUT, AbiLayout
from plutino.native.loader import check_plugin, load_plugin

SOURCE = r'''
#include "plutino/plutino.h"
#include "plutino/plutino_helpers.h"

/* 1 when the host's plutino_host_api has the 1.1 field now_us, else 0 (one row per input row). */
static plutino_status has_now(plutino_context* ctx, void* state, int32_t nargs,
                              const struct ArrowArray* const* args, const struct ArrowSchema* const* types,
                              int64_t n, struct ArrowArray* out, struct ArrowSchema* out_type) {
  (void)state; (void)nargs; (void)args; (void)types;
#ifdef GROWN
  int64_t value = PLUTINO_HAS_FIELD(ctx->host, plutino_host_api, now_us) ? 1 : 0;
#else
  int64_t value = 0;
#endif
  int64_t* data = plutino_result_i64(ctx, out, n);
  if (data == NULL) return PLUTINO_NOMEM;
  for (int64_t i = 0; i < n; i++) data[i] = value;
  return plutino_schema_make(out_type, "l", "");
}

static const plutino_function has_now_fn = {sizeof(plutino_function), 0, "has_now", 1, 1, NULL, NULL, NULL,
                                            has_now, NULL};
static const plutino_function* const functions[] = {&has_now_fn};
PLUTINO_DECLARE_FUNCTIONS(PLUGIN_NAME, "1.0.0", functions)
'''


def grow(header: str) -> str:
    """plutino.h as a 1.1 release would have it: two appended fields, marked since 1.1."""
    grown = header.replace("#define PLUTINO_ABI_MINOR 0", "#define PLUTINO_ABI_MINOR 1")
    grown = grown.replace('#define PLUTINO_CONTRACT_VERSION "1.1.0"', '#define PLUTINO_CONTRACT_VERSION "1.2.0"')
    grown = grown.replace(
        "  const plutino_function* const* functions; /* kind FUNCTION: function_count pointers */\n} plutino_plugin;",
        "  const plutino_function* const* functions; /* kind FUNCTION: function_count pointers */\n"
        "  const char* description;            /* since 1.1: one line about the plugin */\n} plutino_plugin;")
    grown = grown.replace(
        "  void (*free)(void* ptr);\n} plutino_host_api;",
        "  void (*free)(void* ptr);\n  int64_t (*now_us)(void);   /* since 1.1: the host's clock */\n} plutino_host_api;")
    grown = grown.replace(
        "NAME, VERSION, PLUTINO_CONTRACT_VERSION, (SOURCE), (SINK), (FUNCTIONS)};",
        "NAME, VERSION, PLUTINO_CONTRACT_VERSION, (SOURCE), (SINK), (FUNCTIONS), PLUGIN_DESCRIPTION};")
    assert grown.count("since 1.1") == 2 and "PLUGIN_DESCRIPTION" in grown, "plutino.h changed: update grow()"
    return grown


@pytest.fixture(scope="module")
def grown_include(include_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("grown-include")
    (root / "plutino").mkdir()
    for header in (include_dir / "plutino").iterdir():
        text = header.read_text()
        (root / "plutino" / header.name).write_text(grow(text) if header.name == "plutino.h" else text)
    return root


@pytest.fixture(scope="module")
def plugins(include_dir: Path, grown_include: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("evolution")
    source = out / "has_now.c"
    source.write_text(SOURCE)
    builds = {
        "v10": (include_dir, ()),
        "v11": (grown_include, ("-DGROWN", '-DPLUGIN_DESCRIPTION="built for 1.1"')),
        "v11_for_10": (grown_include, ("-DGROWN", '-DPLUGIN_DESCRIPTION="built for 1.1, runs on 1.0"',
                                       "-DPLUTINO_TARGET_ABI_MINOR=0")),
    }
    paths = {}
    for name, (include, flags) in builds.items():
        path = out / f"{name}.so"
        subprocess.run(["gcc", "-shared", "-fPIC", "-fvisibility=hidden", "-O1", f"-I{include}",
                        f'-DPLUGIN_NAME="{name}"', *flags, str(source), "-o", str(path)],
                       check=True, capture_output=True, text=True)
        paths[name] = path
    return paths


@pytest.fixture(scope="module")
def host_11(grown_include: Path) -> AbiLayout:
    return AbiLayout.from_header((grown_include / "plutino" / "plutino.h").read_text())


def test_the_grown_layout_knows_each_minor_s_struct_sizes(host_11: AbiLayout) -> None:
    assert host_11.version == (1, 1)
    assert host_11.since == {"plutino_plugin": {"description": 1}, "plutino_host_api": {"now_us": 1}}
    for struct in ("plutino_plugin", "plutino_host_api"):
        assert host_11.min_size(struct, 0) == HOST_LAYOUT.ffi.sizeof(struct)  # 1.0's size
        assert host_11.min_size(struct, 1) == host_11.ffi.sizeof(struct) == HOST_LAYOUT.ffi.sizeof(struct) + 8
    assert host_11.min_size("plutino_function", 0) == host_11.min_size("plutino_function", 1)


def test_this_host_loads_1_0_and_refuses_1_1_naming_both(plugins: dict[str, Path]) -> None:
    assert HOST_ABI == (1, 0)
    assert check_plugin(plugins["v10"]).ok
    refused = check_plugin(plugins["v11"]).refusal
    assert isinstance(refused, PluginRefused) and refused.field == "abi_minor"
    assert "built for ABI 1.1, this host speaks ABI 1.0" in str(refused)
    assert "upgrade the host to one speaking ABI 1.1" in str(refused)


def test_a_plugin_targeting_1_0_loads_here_and_sees_the_new_host_field_absent(plugins: dict[str, Path]) -> None:
    plugin = load_plugin(plugins["v11_for_10"])
    assert plugin.abi == (1, 0) and plugin.contract_version == "1.2.0"
    with plutino.Engine() as engine:
        engine.register(plugin)
        rows = engine.query("SELECT has_now(a) AS h FROM s", [pa.record_batch({"a": [1, 2, 3]})]).to_pylist()
    assert rows == [{"h": 0}, {"h": 0}, {"h": 0}]  # PLUTINO_HAS_FIELD: this host's struct ends before now_us


def test_a_1_1_host_loads_every_plugin_and_reads_new_fields_only_when_present(
        plugins: dict[str, Path], host_11: AbiLayout) -> None:
    def description(path: Path) -> str | None:
        plugin = load_plugin(path, host_abi=host_11)
        value = plugin._descriptor.description  # the widened, host-owned copy
        return None if value == host_11.ffi.NULL else host_11.ffi.string(value).decode()

    assert description(plugins["v10"]) is None  # its 1.0 struct is widened with zeros, not read past its end
    assert description(plugins["v11"]) == "built for 1.1"
    assert description(plugins["v11_for_10"]) == "built for 1.1, runs on 1.0"
