"""install.sh runs only when allowed, with shellParas, a timeout and its output recorded;
settings come from etc/plutino.yaml and the environment."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from package_helpers import snapshot
from plutino.config import DataDir, Settings, load_settings
from plutino.errors import PlutinoError
from plutino.packages.manager import PluginManager
from plutino.packages.format import MANIFEST, PackageError, manifest_for


def _file_sink_zip(plugin_build: Path, path: Path, extra: dict[str, bytes]) -> Path:
    so = plugin_build / "sinks" / "file.so"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("file.so", so.read_bytes())
        z.writestr(MANIFEST, json.dumps(manifest_for(so).to_dict()))
        for name, data in extra.items():
            z.writestr(name, data)
    return path


@pytest.fixture
def scripted(home: Path, tmp_path: Path) -> PluginManager:
    return PluginManager(home, settings=Settings(allow_scripts=True, script_timeout_s=2, allowed_file_dirs=(tmp_path,)))


def test_an_allowed_script_runs_with_shell_params_and_its_output_is_recorded(scripted, plugin_build, tmp_path, home):
    script = b'echo "args: $*"; echo "home: $PLUTINO_HOME"; echo "to stderr" >&2; touch ran-here\n'
    package = _file_sink_zip(plugin_build, tmp_path / "file.zip", {"install.sh": script})
    record = scripted.install("sink", "file", str(package), shell_params=["a", "b c"])
    assert record.install_output == f"args: a b c\nhome: {home}\nto stderr\n"
    assert scripted.describe("sink", "file")["install_output"] == record.install_output
    assert not (home / "ran-here").exists()  # it ran in the staging dir, which is gone


def test_a_failing_script_stops_the_install_and_changes_nothing(scripted, plugin_build, tmp_path, home):
    package = _file_sink_zip(plugin_build, tmp_path / "file.zip", {"install.sh": b"echo step one\necho broken >&2\nexit 3\n"})
    before = snapshot(home, scripted)
    with pytest.raises(PackageError) as info:
        scripted.install("sink", "file", str(package))
    assert str(info.value) == "package file.zip: install.sh failed (exit 3); its output ends with:\nstep one\nbroken"
    assert snapshot(home, scripted) == before


def test_a_script_that_runs_too_long_is_stopped(scripted, plugin_build, tmp_path, home):
    package = _file_sink_zip(plugin_build, tmp_path / "file.zip", {"install.sh": b"sleep 30\n"})
    before = snapshot(home, scripted)
    with pytest.raises(PackageError) as info:
        scripted.install("sink", "file", str(package))
    assert str(info.value) == ("package file.zip: install.sh did not finish within script_timeout_s = 2 s; "
                               "make it faster or raise the limit")
    assert snapshot(home, scripted) == before


def test_an_etc_folder_is_installed_under_the_plugins_own_etc_folder_and_deleted_with_it(manager, plugin_build, tmp_path, home):
    package = _file_sink_zip(plugin_build, tmp_path / "file.zip", {
        "file.yaml": b"default: {path: x}\n", "etc/templates/row.tmpl": b"{{.}}\n"})
    record = manager.install("sink", "file", str(package))
    assert record.config_files == ("etc/sinks/file.yaml", "etc/sinks/file/templates/row.tmpl")
    assert (home / "etc/sinks/file/templates/row.tmpl").read_text() == "{{.}}\n"
    manager.delete("sink", "file")
    assert list((home / "etc/sinks").iterdir()) == []


def test_settings_come_from_the_yaml_file_then_the_environment(tmp_path):
    data = DataDir(tmp_path).ensure()
    data.settings_file.write_text("packages:\n  allow_scripts: true\n  max_package_bytes: 1000\n"
                                  f"  allowed_file_dirs: [{tmp_path}]\n")
    settings = load_settings(data, environ={"PLUTINO_MAX_PACKAGE_BYTES": "2000"})
    assert settings.allow_scripts is True
    assert settings.max_package_bytes == 2000
    assert settings.allowed_file_dirs == (tmp_path,)
    assert load_settings(data, environ={"PLUTINO_ALLOW_SCRIPTS": "off"}).allow_scripts is False


def test_bad_settings_are_refused_with_the_setting_named(tmp_path):
    data = DataDir(tmp_path).ensure()
    data.settings_file.write_text("packages:\n  allow_script: true\n")
    with pytest.raises(PlutinoError) as info:
        load_settings(data, environ={})
    assert str(info.value).startswith(f"{data.settings_file}: unknown setting 'allow_script'; known settings: "
                                      "allow_private_addresses, allow_scripts, allowed_file_dirs, ")
    data.settings_file.unlink()
    with pytest.raises(PlutinoError) as info:
        load_settings(data, environ={"PLUTINO_ALLOW_SCRIPTS": "maybe"})
    assert str(info.value) == "environment: setting allow_scripts = 'maybe' is not a valid bool (default False)"


def test_the_data_dir_defaults_to_plutino_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PLUTINO_HOME", str(tmp_path / "h"))
    data = DataDir.from_env().ensure()
    assert data.root == tmp_path / "h"
    assert sorted(p.relative_to(data.root).as_posix() for p in data.root.rglob("*")) == [
        "etc", "etc/functions", "etc/sinks", "etc/sources", "log", "plugins", "plugins/functions",
        "plugins/sinks", "plugins/sources", "staging", "uploads"]
    monkeypatch.delenv("PLUTINO_HOME")
    monkeypatch.chdir(tmp_path)
    assert DataDir.from_env().root == tmp_path / "plutino_data"
