"""`plutino plugin check` on real .so files: the description or the refusal, exit code 0 or 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from plutino.cli.main import main
from plutino.native.tag import host_platform

from .loader_helpers import fresh_copy

ROOT = Path(__file__).resolve().parents[2]
HOST = host_platform()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_check_describes_a_good_plugin(broken: Path) -> None:
    path = broken / "good_function.so"
    code, out, err = run("plugin", "check", str(path))
    assert (code, err) == (0, "")
    assert out == "\n".join([
        f"plugin {path}: OK",
        "  name:      good_function",
        "  kind:      function",
        "  version:   1.2.3",
        "  ABI:       1.1 (this host speaks 1.1)",
        "  contract:  plutino-contract 1.1.0",
        f"  platform:  {HOST.os} {HOST.arch} {HOST.libc} (ELF64 little-endian {HOST.machine})",
        "  functions:",
        "    double_plus_one (scalar, 1 argument)",
        "    total (aggregate, 1 argument)",
        "    gil_held (scalar, 0 arguments, volatile)",
        "    wrong_length (scalar, 1 argument)",
        "    say_hello (scalar, 0 or more arguments)",
        "    calls (scalar, 1 argument)",
        "    fail_on (scalar, 1 argument)",
    ]) + "\n"


@pytest.mark.parametrize("name, kind, field", [
    ("no_tag", None, "tag_section"),
    ("abi_major_too_new", None, "abi_major"),
    ("kind_source_declared", "sink", "kind"),
    ("missing_callback", None, "callback"),
    ("dup_function", None, "function_name"),
])
def test_check_prints_the_refusal_and_exits_1(broken: Path, name: str, kind: str | None, field: str) -> None:
    path = broken / f"{name}.so"
    code, out, err = run("plugin", "check", str(path), *(["--kind", kind] if kind else []))
    assert (code, out) == (1, "")
    assert err.startswith(f"plugin {path} refused: ") and err.endswith("\n") and err.count("\n") == 1

    code, out, _ = run("plugin", "check", "--json", str(path), *(["--kind", kind] if kind else []))
    report = json.loads(out)
    assert code == 1 and report["ok"] is False and report["refused"]["field"] == field
    assert report["refused"]["message"] == err.strip()


def test_check_with_the_right_kind_passes_and_json_lists_functions(broken: Path) -> None:
    code, out, _ = run("plugin", "check", "--kind", "function", "--json", str(broken / "good_function.so"))
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["name"] == "good_function" and report["abi"] == "1.1"
    assert [f["name"] for f in report["functions"] if f["aggregate"]] == ["total"]


def test_check_of_a_text_file_is_a_refusal(tmp_path: Path) -> None:
    path = tmp_path / "readme.so"
    path.write_text("not a plugin")
    code, _, err = run("plugin", "check", str(path))
    assert code == 1 and "not an ELF file" in err


def test_check_describes_every_bundled_plugin(plugin_build: Path) -> None:
    bundled = sorted(p for kind in ("sources", "sinks", "functions") for p in (plugin_build / kind).glob("*.so"))
    assert {p.stem for p in bundled} >= {"random", "file", "echo", "accumulateWordCount", "fastmath", "geo"}
    for path in bundled:
        kind = path.parent.name[:-1]
        code, out, err = run("plugin", "check", "--kind", kind, str(path))
        assert (code, err) == (0, ""), err
        assert out.startswith(f"plugin {path}: OK\n  name:      {path.stem}\n  kind:      {kind}\n")


def test_python_dash_m_plutino_runs_the_same_command(broken: Path, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "host"), str(ROOT / "contract")]))
    good = subprocess.run([sys.executable, "-m", "plutino", "plugin", "check", str(broken / "good_sink.so")],
                          capture_output=True, text=True, env=env)
    assert good.returncode == 0 and "  kind:      sink\n" in good.stdout
    bad_path = fresh_copy(broken / "bad_magic.so", tmp_path)
    bad = subprocess.run([sys.executable, "-m", "plutino", "plugin", "check", str(bad_path)],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and bad.stderr == (
        f"plugin {bad_path} refused: tag magic is 'NOTPLUG', expected 'PLUTINO'; "
        "rebuild the plugin with PLUTINO_DECLARE_SOURCE/SINK/FUNCTIONS from plutino.h\n")
