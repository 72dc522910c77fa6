"""A plugin whose loading crashes or hangs is refused by the load check, run in a probe process:
the server answers 400 naming the stage and the cause, installs nothing and stays responsive;
``plutino plugin check`` exits 1 with the same reason."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from api.api_helpers import subprocess_env

from .conftest import PROBE_TIMEOUT_S, IsolationServer, PingWatch

CRASH_FIX = "fix the plugin: loading must not crash or exit the process"
HANG_FIX = "fix the plugin: loading must not block"

#: plugin -> (what the refusal says after "refused: ", the fix)
REFUSALS = {
    "h_segv_entry": ("its entry plutino_plugin_v1() crashed the load check with SIGSEGV (plugin h_segv_entry)",
                     CRASH_FIX),
    "h_segv_ctor": ("its library constructors (dlopen) crashed the load check with SIGSEGV (plugin h_segv_ctor)",
                    CRASH_FIX),
    "h_loop_entry": (f"its entry plutino_plugin_v1() did not return within {PROBE_TIMEOUT_S:g} s"
                     " (plugin h_loop_entry)", HANG_FIX),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_install_refuses_a_plugin_whose_load_crashes_or_hangs(name: str, server: IsolationServer,
                                                              hostile_zips: dict[str, Path]) -> None:
    detail, fix = REFUSALS[name]
    plugins = server.data_dir / "plugins"
    before = sorted(p.relative_to(plugins) for p in plugins.rglob("*"))
    with PingWatch(server.url) as ping:
        began = time.monotonic()
        r = server.install(name, hostile_zips[name])
        took = time.monotonic() - began
    assert r.status_code == 400, r.text
    assert r.json()["message"] == f"package {name}.zip: plugin {name}.so refused: {detail}; {fix}"
    assert took < PROBE_TIMEOUT_S + 2, f"the refusal took {took:.2f} s"
    ping.assert_responsive()

    assert name not in server.get("/plugins/functions").json()
    assert server.get(f"/plugins/functions/{name}").status_code == 404
    assert sorted(p.relative_to(plugins) for p in plugins.rglob("*")) == before
    assert not any(name in p.name for p in server.data_dir.rglob("*")), "a file of the refused plugin was left"
    # the server is well: a plugin that loads is still installed
    r = server.install("h_segv_call", hostile_zips["h_segv_call"])
    assert r.status_code == 201, r.text
    assert server.get("/plugins/functions").json() == ["h_segv_call"]
    code, took = server.timed_stop()
    assert code == 0 and took < 5, (code, took)


@pytest.mark.parametrize("name", list(REFUSALS))
def test_plugin_check_refuses_it_with_the_same_reason(name: str, hostile: Path) -> None:
    """``plutino plugin check`` has a --timeout of its own (default 10 s; it does not read
    PLUTINO_PROBE_TIMEOUT): the hanging case passes the server's 3 s."""
    detail, fix = REFUSALS[name]
    so = hostile / f"{name}.so"
    began = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "plutino", "plugin", "check", str(so),
                           "--timeout", f"{PROBE_TIMEOUT_S:g}"],
                          env=subprocess_env(), capture_output=True, text=True, timeout=60)
    took = time.monotonic() - began
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr == f"plugin {so} refused: {detail}; {fix}\n", proc.stderr
    assert proc.stdout == ""
    assert took < PROBE_TIMEOUT_S + 5, f"the check took {took:.2f} s"
