"""Load checks in a probe process: plugin code never runs in the server or the CLI.

Loading a plugin runs its code: the dynamic loader runs its constructors, then the host calls
its entry. A plugin that crashes or hangs there would take the caller down with it, so
install, update and ``check`` load it in a short-lived child process with a deadline:
``python -m plutino.dataplane.probe --kind KIND --report-fd N FILE``. The child reports each
stage ("dlopen", "entry") before entering it, then the result (the JSON of
:class:`plutino.native.loader.PluginCheck`), on a pipe of its own (a plugin may print to
stdout). The parent turns a crash or a hang into a refusal that names the stage.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from plutino.native.tag import read_tag

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # where `import plutino` finds it
_STAGES = {
    "inspect": "reading its ABI tag",
    "dlopen": "its library constructors (dlopen)",
    "entry": "its entry plutino_plugin_v1()",
}


def _refusal(path: str, field: str, detail: str, fix: str) -> dict[str, Any]:
    return {"ok": False, "path": path, "refused": {
        "path": path, "field": field, "plugin_value": None, "host_value": None, "fix": fix,
        "message": f"plugin {path} refused: {detail}; {fix}"}}


def probe_plugin(path: str | os.PathLike[str], kind: str | None = None, timeout_s: float = 10.0) -> dict[str, Any]:
    """Check ``path`` in a probe process; the same dict as ``check_plugin(...).to_dict()``,
    with a refusal for a crash or a hang. The tag is read here first (no plugin code runs for
    that), so a file that is not a plugin is refused without starting a process."""
    from plutino.errors import PluginRefused

    shown = os.fspath(path)
    try:
        tag = read_tag(shown, kind)
    except PluginRefused as refusal:
        return {"ok": False, "path": shown, "refused": refusal.to_dict()}
    read_fd, write_fd = os.pipe()
    env = dict(os.environ)
    package_root = _PACKAGE_ROOT
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "plutino.dataplane.probe", "--report-fd", str(write_fd), shown]
    if kind:
        cmd[3:3] = ["--kind", kind]
    try:
        proc = subprocess.Popen(cmd, pass_fds=[write_fd], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    finally:
        os.close(write_fd)
    report = _read_report(read_fd, proc, timeout_s)
    stage = _STAGES.get(report.get("stage", "inspect"), report.get("stage", "?"))
    name = tag.name
    if "result" in report:
        return report["result"]
    if report.get("timeout"):
        return _refusal(shown, "load", f"{stage} did not return within {timeout_s:g} s (plugin {name})",
                        "fix the plugin: loading must not block")
    code = proc.returncode
    how = signal.Signals(-code).name if code is not None and code < 0 and -code in signal.valid_signals() \
        else f"exit status {code}"
    return _refusal(shown, "load", f"{stage} crashed the load check with {how} (plugin {name})",
                    "fix the plugin: loading must not crash or exit the process")


def probe_load(path: str | os.PathLike[str], kind: str | None, timeout_s: float) -> Any:
    """Check ``path`` in a probe process; return what the check found as a
    :class:`~plutino.packages.probed.ProbedPlugin`, or raise the refusal."""
    from plutino.errors import PluginRefused
    from plutino.packages.probed import ProbedPlugin

    check = probe_plugin(path, kind, timeout_s)
    if not check["ok"]:
        r = check["refused"]
        rest = r["message"].split(" refused: ", 1)[-1]
        detail = rest[:-(len(r["fix"]) + 2)] if rest.endswith("; " + r["fix"]) else rest
        raise PluginRefused(os.fspath(path), r["field"], detail, r["fix"], r.get("plugin_value"), r.get("host_value"))
    return ProbedPlugin.from_check(check, os.fspath(path))


def _read_report(fd: int, proc: subprocess.Popen[bytes], timeout_s: float) -> dict[str, Any]:
    import selectors

    report: dict[str, Any] = {}
    buffer = b""
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    report["timeout"] = True
                    os.killpg(proc.pid, signal.SIGKILL)
                    break
                if not sel.select(min(left, 0.5)):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    key, _, value = line.decode("utf-8", "replace").partition(" ")
                    if key == "stage":
                        report["stage"] = value
                    elif key == "result":
                        report["result"] = json.loads(value)
        finally:
            os.close(fd)
    try:
        proc.wait(2.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return report


def main(argv: list[str] | None = None) -> int:
    from plutino.native.loader import check_plugin

    parser = argparse.ArgumentParser(prog="python -m plutino.dataplane.probe")
    parser.add_argument("--kind", default=None)
    parser.add_argument("--report-fd", type=int, required=True)
    parser.add_argument("path")
    args = parser.parse_args(argv)
    out = os.fdopen(args.report_fd, "w", buffering=1)

    def stage(name: str) -> None:
        out.write(f"stage {name}\n")
        out.flush()

    stage("inspect")
    result = check_plugin(args.path, args.kind, on_stage=stage).to_dict()
    out.write("result " + json.dumps(result) + "\n")
    out.flush()
    os._exit(0)  # no destructors of the plugin's library after the report


if __name__ == "__main__":
    sys.exit(main())
