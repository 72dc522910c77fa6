"""A function named like a built-in SQL function is reported before install: by `plutino
plugin check` (an error, exit 1) and by `plutino plugin pack` (refused, no zip written)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from plutino.cli.main import main
from plutino.packages.collisions import builtin_collisions

ROOT = Path(__file__).resolve().parents[2]
INCLUDE = ROOT / "contract" / "include"

SOURCE = r"""
#include "plutino/plutino.h"
#include "plutino/plutino_helpers.h"

static plutino_status same_call(plutino_context* ctx, void* state, int32_t nargs,
                                const struct ArrowArray* const* args,
                                const struct ArrowSchema* const* types, int64_t n,
                                struct ArrowArray* out, struct ArrowSchema* out_type) {
  (void)state; (void)nargs; (void)args; (void)types; (void)n; (void)out; (void)out_type;
  return plutino_set_error(ctx, "not called in these tests");
}

static const plutino_function f_a = {sizeof(plutino_function), 0, "%(first)s", 1, 1, NULL, NULL, NULL, same_call, NULL};
static const plutino_function f_b = {sizeof(plutino_function), 0, "shout", 1, 1, NULL, NULL, NULL, same_call, NULL};
static const plutino_function* const functions[] = {&f_a, &f_b};

PLUTINO_DECLARE_FUNCTIONS("strtools", "1.0.0", functions)
"""


def build(tmp_path: Path, first: str) -> Path:
    src = tmp_path / "strtools.c"
    src.write_text(SOURCE % {"first": first})
    so = tmp_path / "strtools.so"
    proc = subprocess.run(["gcc", "-shared", "-fPIC", "-fvisibility=hidden", "-O1", f"-I{INCLUDE}", str(src),
                           "-o", str(so)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return so


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def clashing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("clash"), "Reverse")


def test_the_message_names_the_function_the_builtin_and_the_fix() -> None:
    assert builtin_collisions("str-tools", ["shout", "REVERSE", "count"]) == [
        "function 'REVERSE' of plugin 'str-tools' collides with the built-in SQL function 'reverse' (SQL names "
        "are case-insensitive), so the plugin cannot be installed; rename the plugin's function, e.g. "
        "'str_tools_REVERSE', then build it again",
        "function 'count' of plugin 'str-tools' collides with the built-in SQL function 'count' (SQL names "
        "are case-insensitive), so the plugin cannot be installed; rename the plugin's function, e.g. "
        "'str_tools_count', then build it again",
    ]
    assert builtin_collisions("x", ["shout", "tumblingwindow_x"]) == []


def test_check_shows_the_collision_as_an_error_and_exits_1(clashing: Path) -> None:
    code, out, err = run("plugin", "check", str(clashing))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"plugin {clashing}: loads, but cannot be installed (1 error)"
    assert "    Reverse (scalar, 1 argument)  <- named like a built-in" in lines
    assert "    shout (scalar, 1 argument)" in lines
    assert err.startswith("error: function 'Reverse' of plugin 'strtools' collides with the built-in SQL "
                          "function 'reverse'")
    assert "rename the plugin's function, e.g. 'strtools_Reverse'" in err


def test_check_json_lists_errors_and_warnings(clashing: Path) -> None:
    code, out, _ = run("plugin", "check", "--json", str(clashing))
    result = json.loads(out)
    assert code == 1 and result["ok"] is False
    assert [f["name"] for f in result["functions"]] == ["Reverse", "shout"]
    assert len(result["errors"]) == 1 and "'Reverse'" in result["errors"][0]
    assert isinstance(result["warnings"], list)


def test_a_plugin_without_collisions_checks_ok_with_empty_errors(tmp_path: Path) -> None:
    so = build(tmp_path, "mirror")
    code, out, err = run("plugin", "check", "--json", str(so))
    result = json.loads(out)
    assert (code, err) == (0, "")
    assert result["ok"] is True and result["errors"] == []
    code, out, _ = run("plugin", "check", str(so))
    assert code == 0 and out.splitlines()[0] == f"plugin {so}: OK"


def test_warnings_are_printed_one_per_line() -> None:
    from plutino.cli.main import format_check

    shown = format_check({
        "path": "p.so", "name": "p", "kind": "sink", "version": "1", "abi": "1.0", "host_abi": "1.0",
        "contract_version": "1.1.0", "functions": [], "errors": [],
        "platform": {"os": "linux", "arch": "x86_64", "libc": "glibc", "elf_class": 64,
                     "byte_order": "little-endian", "machine": "EM_X86_64"},
        "warnings": ["exports 2 symbols besides plutino_plugin_v1: a, b", "second"],
    })
    assert shown.splitlines()[-2:] == ["  warning:   exports 2 symbols besides plutino_plugin_v1: a, b",
                                       "  warning:   second"]


def test_pack_refuses_and_writes_no_zip(clashing: Path, tmp_path: Path) -> None:
    out = tmp_path / "strtools.zip"
    code, stdout, err = run("plugin", "pack", str(clashing), "-o", str(out))
    assert (code, stdout) == (1, "")
    assert err.startswith(f"error: cannot pack {clashing}: function 'Reverse' of plugin 'strtools' collides "
                          "with the built-in SQL function 'reverse'")
    assert "rename the plugin's function" in err
    assert not out.exists()


def test_pack_of_a_clean_library_still_works(tmp_path: Path) -> None:
    so = build(tmp_path, "mirror")
    code, stdout, err = run("plugin", "pack", str(so), "-o", str(tmp_path / "s.zip"))
    assert (code, err) == (0, "") and "packed function plugin strtools 1.0.0" in stdout
