"""The `plutino plugin` package commands, run as a user runs them."""

from __future__ import annotations

import json

from click.testing import CliRunner
from plutino.cli.main import main


def run(*args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(main, ["plugin", *args], catch_exceptions=False)
    assert (result.exit_code == 0) is ok, result.output
    return result.output


def test_new_build_pack_install_list_describe_update_delete(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    home = str(tmp_path / "home")
    assert run("new", "hello", "--kind", "function", "--lang", "c") == (
        "created function plugin hello (c) in hello\n"
        "next: plutino plugin build hello && plutino plugin pack hello -o hello.zip\n")
    assert f"built {tmp_path / 'hello' / 'build' / 'hello.so'}\n" in run("build", "hello")
    assert run("pack", "hello", "-o", "hello.zip") == (
        f"packed function plugin hello 0.1.0 into {tmp_path / 'hello.zip'}: hello.json, hello.so, plutino.json\n")
    assert run("install", "hello.zip", "--data-dir", home) == (
        "function plugin hello 0.1.0 is installed (plugins/functions/hello@v0.1.0.so)\n")
    assert run("list", "--data-dir", home) == "function  hello                    0.1.0      loaded  (hello)\n"
    described = json.loads(run("describe", "function", "hello", "--json", "--data-dir", home))
    assert described["source"] == str(tmp_path / "hello.zip") and described["functions"] == ["hello"]
    assert "sha256:" in run("describe", "function", "hello", "--data-dir", home)

    cmake = tmp_path / "hello" / "CMakeLists.txt"
    cmake.write_text(cmake.read_text().replace("VERSION 0.1.0", "VERSION 0.2.0"))
    run("build", "hello")
    run("pack", "hello", "-o", "hello2.zip")
    assert run("update", (tmp_path / "hello2.zip").as_uri(), "--data-dir", home) == (
        "function plugin hello is updated to 0.2.0 (plugins/functions/hello@v0.2.0.so)\n")
    assert json.loads(run("list", "function", "--json", "--data-dir", home))[0]["version"] == "0.2.0"
    assert run("delete", "function", "hello", "--data-dir", home) == "function plugin hello is deleted\n"
    assert run("list", "--data-dir", home) == "no plugins installed\n"


def test_errors_are_one_line_on_stderr_with_exit_code_1(tmp_path):
    out = run("install", str(tmp_path / "missing.zip"), "--data-dir", str(tmp_path / "home"), ok=False)
    assert out == (f"error: cannot install from {str(tmp_path / 'missing.zip')!r}: {tmp_path / 'missing.zip'} "
                   "does not exist or is not a file; check the path (a file:// URL needs an absolute path: "
                   "file:///dir/name.zip)\n")
    out = run("describe", "sink", "nope", "--data-dir", str(tmp_path / "home"), ok=False)
    assert out == "error: sink plugin nope is not installed; see `plutino plugin list sink`\n"


def test_the_data_dir_comes_from_plutino_home(tmp_path, monkeypatch, zips):
    monkeypatch.setenv("PLUTINO_HOME", str(tmp_path / "env-home"))
    run("install", str(zips / "echo.zip"))
    assert (tmp_path / "env-home" / "plugins" / "functions" / "echo@v1.0.0.so").is_file()
    assert "echo" in run("list", "function")
