"""The optional ``install.sh`` of a package: run at install time, only when the settings allow it.

A script runs with ``sh`` in the unpacked package's folder, with ``shellParas`` as its
arguments and ``PLUTINO_HOME``, ``PLUTINO_PLUGIN`` and ``PLUTINO_PLUGIN_KIND`` in its
environment. It runs before any plugin file is put in place, so a failing script fails the
install with nothing installed. Its output (the last 64 KiB, stdout and stderr together) is
kept in the plugin's record.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence

from plutino.config import DataDir, Settings
from plutino.packages.format import PackageError, StagedPackage

_MAX_OUTPUT = 64 * 1024


def run_install_script(pkg: StagedPackage, shell_params: Sequence[str], settings: Settings, data: DataDir) -> str:
    """Run ``pkg``'s install.sh and return its output; PackageError when it is not allowed,
    fails or times out (``script_timeout_s``)."""
    assert pkg.script is not None
    if not settings.allow_scripts:
        raise PackageError(
            f"package {pkg.label} contains install.sh, and running install scripts is off;"
            " an administrator can allow it with allow_scripts: true under packages: in"
            f" {data.settings_file} (or PLUTINO_ALLOW_SCRIPTS=1), or remove install.sh"
            " from the package"
        )
    if not all(isinstance(p, str) for p in shell_params):
        raise PackageError(f"shellParas must be a list of strings, got {list(shell_params)!r}")
    env = dict(os.environ, PLUTINO_HOME=str(data.root), PLUTINO_PLUGIN=pkg.manifest.name,
               PLUTINO_PLUGIN_KIND=pkg.manifest.kind)
    # A session of its own, so a timeout kills everything the script started.
    proc = subprocess.Popen(
        ["sh", str(pkg.script), *shell_params], cwd=pkg.root, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        stdout, _ = proc.communicate(timeout=settings.script_timeout_s)
    except subprocess.TimeoutExpired as exc:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise PackageError(
            f"package {pkg.label}: install.sh did not finish within script_timeout_s ="
            f" {settings.script_timeout_s:g} s; make it faster or raise the limit"
        ) from exc
    output = stdout.decode("utf-8", "replace")[-_MAX_OUTPUT:]
    if proc.returncode != 0:
        tail = "\n".join(output.splitlines()[-20:])
        raise PackageError(
            f"package {pkg.label}: install.sh failed (exit {proc.returncode}); its output"
            f" ends with:\n{tail}"
        )
    return output


__all__ = ["run_install_script"]
