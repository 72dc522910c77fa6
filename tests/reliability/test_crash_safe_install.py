"""Kill the host (SIGKILL) at every step of an install and of a delete; the next start finds the
plugin fully installed (file, record, config files; it loads and is listed) or fully absent (no
file, no record, no config file, nothing in staging/ or pending_files), and the host starts.

The steps are the manager's own (plutino.packages.manager.INSTALL_STEPS, DELETE_STEPS): the child process
runs a real install or delete with PLUTINO_TEST_CRASH_AT=<step>, and the manager kills itself
with SIGKILL at that step boundary, as a power cut or the OOM killer would.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from package_helpers import subprocess_env
from plutino.host import Host
from plutino.packages.format import sha256_file
from plutino.packages.manager import CRASH_ENV, DELETE_STEPS, INSTALL_STEPS, PluginManager

_CHILD = """
import sys
from plutino.packages.manager import PluginManager
manager = PluginManager(sys.argv[1])
manager.load_all()  # as a host does at start-up
if sys.argv[2] == "install":
    manager.install("source", "random", sys.argv[3])
else:
    manager.delete("source", "random")
print("finished")
"""


def _run(home: Path, action: str, step: str | None, package: Path | None = None) -> subprocess.CompletedProcess:
    env = subprocess_env()
    env.pop(CRASH_ENV, None)
    if step is not None:
        env[CRASH_ENV] = step
    args = [sys.executable, "-c", _CHILD, str(home), action] + ([str(package)] if package else [])
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)


def _state_after_restart(home: Path) -> str:
    """Start a host on ``home`` and say whether random is 'installed' or 'absent' — fully,
    or fail naming what is half there."""
    host = Host(home)
    try:
        report = host.start()
        assert report.failures == {}, report.failures
        assert list((home / "staging").iterdir()) == [], "staging/ was not emptied"
        assert host.store.pending_files() == []
        record = host.store.get_plugin("source", "random")
        plugin_files = sorted(p.name for p in (home / "plugins" / "sources").iterdir())
        etc_files = sorted(p.relative_to(home).as_posix() for p in (home / "etc" / "sources").rglob("*"))
        if record is None:
            assert plugin_files == [], f"no record, but files {plugin_files}"
            assert etc_files == [], f"no record, but config files {etc_files}"
            assert host.registry.find("source", "random") is None
            assert host.plugins.list() == []
            return "absent"
        assert record.status == "loaded", record.error
        assert plugin_files == ["random@v1.0.0.so"]
        assert sha256_file(home / record.file) == record.sha256
        assert sorted(record.config_files) == etc_files == ["etc/sources/random.json", "etc/sources/random.yaml"]
        assert host.registry.find("source", "random") is not None
        assert [r.name for r in host.plugins.list("source")] == ["random"]
        host.engine.create_stream('CREATE STREAM s () WITH (TYPE="random", CONF_KEY="ext")')  # usable
        return "installed"
    finally:
        host.close()


@pytest.mark.parametrize("step", INSTALL_STEPS)
def test_an_install_killed_at_any_step_leaves_the_plugin_all_there_or_not_at_all(step, home, zips):
    PluginManager(home).store.close()  # an existing, empty data dir
    child = _run(home, "install", step, zips / "random.zip")
    assert child.returncode == -signal.SIGKILL, child.stderr
    expected = "installed" if step == "install:committed" else "absent"
    assert _state_after_restart(home) == expected
    if expected == "absent":  # and nothing stands in the way of trying again
        child = _run(home, "install", None, zips / "random.zip")
        assert child.returncode == 0, child.stderr
        assert _state_after_restart(home) == "installed"


@pytest.mark.parametrize("step", DELETE_STEPS)
def test_a_delete_killed_at_any_step_leaves_the_plugin_all_there_or_not_at_all(step, home, zips):
    manager = PluginManager(home)
    manager.install("source", "random", str(zips / "random.zip"))
    manager.store.close()
    child = _run(home, "delete", step)
    assert child.returncode == -signal.SIGKILL, child.stderr
    expected = "installed" if step == "delete:checked" else "absent"
    assert _state_after_restart(home) == expected


def test_without_a_crash_the_child_installs_and_deletes(home, zips):
    assert _run(home, "install", None, zips / "random.zip").stdout == "finished\n"
    assert _state_after_restart(home) == "installed"
    assert _run(home, "delete", None).stdout == "finished\n"
    assert _state_after_restart(home) == "absent"


def test_every_step_is_reached_by_an_install_and_a_delete():
    """The step names the tests use are the ones the manager checks (no step is dead code)."""
    source = Path(sys.modules[PluginManager.__module__].__file__).read_text()  # type: ignore[arg-type]
    for step in (*INSTALL_STEPS, *DELETE_STEPS):
        assert source.count(f'crash_point("{step}")') == 1, step
