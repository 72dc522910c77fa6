"""The versioning promise, shown with real builds against older and newer headers.

This host speaks ABI 1.1 (1.1 appended ``ack`` to plutino_source_api). The test makes two
test-only copies of plutino.h: the 1.0 header (the 1.1 field removed) and a grown 1.2 (a field
appended to plutino_plugin and one to plutino_host_api, each marked ``since 1.2``), and builds
the same plugin source against 1.0, 1.1 (the real header), 1.2, and 1.2 targeting 1.1
(PLUTINO_TARGET_ABI_MINOR). Then:
- this host loads the 1.0 and 1.1 plugins, refuses the 1.2 plugin naming both versions, and
  loads the 1.2-header plugin that targets 1.1, whose check of the host's new field says absent;
- a host speaking the grown 1.2 (its layout built from the grown header) loads all of them and
  reads the new descriptor field only from the plugins that have it: an older plugin's struct
  is widened with zeros, never read past its struct_size.
"""

from __future__ import annotations

import re
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


MINOR = HOST_ABI[1]
NEXT = MINOR + 1


def grow(header: str) -> str:
    """plutino.h as the next minor would have it: two appended fields, marked since 1.NEXT."""
    grown = header.replace(f"#define PLUTINO_ABI_MINOR {MINOR}", f"#define PLUTINO_ABI_MINOR {NEXT}")
    grown = grown.replace('#define PLUTINO_CONTRACT_VERSION "1.1.0"', '#define PLUTINO_CONTRACT_VERSION "1.9.0"')
    grown = grown.replace(
        "  const plutino_function* const* functions; /* kind FUNCTION: function_count pointers */\n} plutino_plugin;",
        "  const plutino_function* const* functions; /* kind FUNCTION: function_count pointers */\n"
        f"  const char* description;            /* since 1.{NEXT}: one line about the plugin */\n}} plutino_plugin;")
    grown = grown.replace(
        "  void (*free)(void* ptr);\n} plutino_host_api;",
        f"  void (*free)(void* ptr);\n  int64_t (*now_us)(void);   /* since 1.{NEXT}: the host's clock */\n"
        "} plutino_host_api;")
    grown = grown.replace(
        "NAME, VERSION, PLUTINO_CONTRACT_VERSION, (SOURCE), (SINK), (FUNCTIONS)};",
        "NAME, VERSION, PLUTINO_CONTRACT_VERSION, (SOURCE), (SINK), (FUNCTIONS), PLUGIN_DESCRIPTION};")
    assert grown.count(f"since 1.{NEXT}") == 2 and "PLUGIN_DESCRIPTION" in grown, "plutino.h changed: update grow()"
    return grown


def shrink_to_1_0(header: str) -> str:
    """plutino.h as ABI 1.0 had it: without the source's ack() slot (since 1.1)."""
    old = re.sub(r"  /\* Optional \(NULL: the host acknowledges nothing.*?int64_t seq\);\n", "", header, flags=re.S)
    old = old.replace(f"#define PLUTINO_ABI_MINOR {MINOR}", "#define PLUTINO_ABI_MINOR 0")
    assert "(*ack)" not in old and "#define PLUTINO_ABI_MINOR 0" in old, "plutino.h changed: update shrink_to_1_0()"
    return old


def _headers(include_dir: Path, root: Path, change) -> Path:  # noqa: ANN001
    (root / "plutino").mkdir(parents=True)
    for header in (include_dir / "plutino").iterdir():
        text = header.read_text()
        (root / "plutino" / header.name).write_text(change(text) if header.name == "plutino.h" else text)
    return root


@pytest.fixture(scope="module")
def grown_include(include_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _headers(include_dir, tmp_path_factory.mktemp("grown-include"), grow)


@pytest.fixture(scope="module")
def old_include(include_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _headers(include_dir, tmp_path_factory.mktemp("old-include"), shrink_to_1_0)


@pytest.fixture(scope="module")
def plugins(include_dir: Path, old_include: Path, grown_include: Path,
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("evolution")
    source = out / "has_now.c"
    source.write_text(SOURCE)
    builds = {
        "v10": (old_include, ()),
        "v11": (include_dir, ()),
        "v12": (grown_include, ("-DGROWN", '-DPLUGIN_DESCRIPTION="built for 1.2"')),
        "v12_for_11": (grown_include, ("-DGROWN", '-DPLUGIN_DESCRIPTION="built for 1.2, runs on 1.1"',
                                       f"-DPLUTINO_TARGET_ABI_MINOR={MINOR}")),
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
def host_next(grown_include: Path) -> AbiLayout:
    return AbiLayout.from_header((grown_include / "plutino" / "plutino.h").read_text())


def test_each_minor_s_struct_sizes_come_from_the_since_marks(host_next: AbiLayout, old_include: Path) -> None:
    assert HOST_LAYOUT.since == {"plutino_source_api": {"ack": 1}}
    old = AbiLayout.from_header((old_include / "plutino" / "plutino.h").read_text())
    assert old.version == (1, 0) and old.since == {}
    assert HOST_LAYOUT.min_size("plutino_source_api", 0) == old.ffi.sizeof("plutino_source_api")
    assert HOST_LAYOUT.min_size("plutino_source_api", 1) == HOST_LAYOUT.ffi.sizeof("plutino_source_api")
    assert host_next.version == (1, NEXT)
    assert host_next.since == {"plutino_source_api": {"ack": 1}, "plutino_plugin": {"description": NEXT},
                               "plutino_host_api": {"now_us": NEXT}}
    for struct in ("plutino_plugin", "plutino_host_api"):
        assert host_next.min_size(struct, MINOR) == HOST_LAYOUT.ffi.sizeof(struct)
        assert host_next.min_size(struct, NEXT) == host_next.ffi.sizeof(struct) == HOST_LAYOUT.ffi.sizeof(struct) + 8


def test_this_host_loads_older_and_its_own_minor_and_refuses_a_newer_one_naming_both(
        plugins: dict[str, Path]) -> None:
    assert check_plugin(plugins["v10"]).ok and check_plugin(plugins["v10"]).tag.abi == (1, 0)
    assert check_plugin(plugins["v11"]).ok
    refused = check_plugin(plugins["v12"]).refusal
    assert isinstance(refused, PluginRefused) and refused.field == "abi_minor"
    assert f"built for ABI 1.{NEXT}, this host speaks ABI 1.{MINOR}" in str(refused)
    assert f"upgrade the host to one speaking ABI 1.{NEXT}" in str(refused)


def test_a_plugin_targeting_this_minor_loads_here_and_sees_the_new_host_field_absent(
        plugins: dict[str, Path]) -> None:
    plugin = load_plugin(plugins["v12_for_11"])
    assert plugin.abi == (1, MINOR) and plugin.contract_version == "1.9.0"
    with plutino.Engine() as engine:
        engine.register(plugin)
        rows = engine.query("SELECT has_now(a) AS h FROM s", [pa.record_batch({"a": [1, 2, 3]})]).to_pylist()
    assert rows == [{"h": 0}, {"h": 0}, {"h": 0}]  # PLUTINO_HAS_FIELD: this host's struct ends before now_us


def test_a_newer_host_loads_every_plugin_and_reads_new_fields_only_when_present(
        plugins: dict[str, Path], host_next: AbiLayout) -> None:
    def description(path: Path) -> str | None:
        plugin = load_plugin(path, host_abi=host_next)
        value = plugin._descriptor.description  # the widened, host-owned copy
        return None if value == host_next.ffi.NULL else host_next.ffi.string(value).decode()

    assert description(plugins["v10"]) is None  # older structs are widened with zeros, not read past their end
    assert description(plugins["v11"]) is None
    assert description(plugins["v12"]) == "built for 1.2"
    assert description(plugins["v12_for_11"]) == "built for 1.2, runs on 1.1"
