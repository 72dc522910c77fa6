"""The demo of ``plutino serve --demo`` (``make run``): the bundled plugins installed as
packages, a stream over the bundled random source and a rule calling the bundled fastmath
functions into a file, on the Host's own API like any user's."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from plutino.errors import PlutinoError

log = logging.getLogger("plutino.host")

DEMO_STREAM = 'CREATE STREAM demo () WITH (TYPE="random", CONF_KEY="ext", FORMAT="json")'
DEMO_SQL = ("SELECT count, temperature, mul2add1(temperature) AS t2, upperAscii(name) AS sensor "
            "FROM demo WHERE count > 10")
_BUNDLED_FIX = ("build them with `make build` (installed package; source tree: build/native/plugins),"
                " or pass --bundled-dir")


def bundled_plugins_dir() -> Path | None:
    """Where the bundled plugins are: ``plutino/bundled`` in an installed package, else (in a
    source tree) ``build/native/plugins``, built by `make` and the tests. None if neither."""
    import plutino

    package = Path(plutino.__file__).resolve().parent
    candidates = [package / "bundled"]
    repo = package.parent.parent
    if (repo / "native_plugins").is_dir():
        candidates.append(repo / "build" / "native" / "plugins")
    for folder in candidates:
        if any((folder / f"{kind}s").glob("*.so") for kind in ("source", "sink", "function")):
            return folder
    return None


def install_bundled(host: Any, folder: Path) -> list[str]:
    """Pack and install every bundled plugin in ``folder/{sources,sinks,functions}`` that is
    not installed yet; return ``kind/name`` of those installed. Failures are logged."""
    from plutino.packages.format import pack

    installed = []
    with tempfile.TemporaryDirectory(prefix="bundled-", dir=host.data.uploads_dir) as tmp:
        for kind in ("source", "sink", "function"):
            for so in sorted((folder / f"{kind}s").glob("*.so")):
                name = so.stem.split("@")[0]
                if host.store.get_plugin(kind, name) is not None:
                    continue
                try:
                    package = pack(so, Path(tmp) / f"{name}.zip")
                    host.install_plugin(kind, name, str(package))
                    installed.append(f"{kind}/{name}")
                except PlutinoError as exc:
                    log.error("bundled %s plugin %s was not installed: %s", kind, name, exc)
    return installed

def install_demo(host: Any, report: Any, bundled_dir: Path | None) -> None:
    """``plutino serve --demo``: the bundled plugins, the demo stream and rule (``report``: the
    host's StartReport, which lists what was installed and started)."""
    folder = bundled_dir or bundled_plugins_dir()
    if folder is None or not folder.is_dir():
        log.error("--demo: the bundled plugins were not found%s; %s",
                  f" in {folder}" if folder else "", _BUNDLED_FIX)
        return
    report.bundled = host.install_bundled(folder)
    report.plugins["loaded"].extend(report.bundled)
    log.info("--demo: installed bundled plugins %s from %s", ", ".join(report.bundled) or "none", folder)
    out = host.data.root / "out"
    out.mkdir(parents=True, exist_ok=True)
    try:
        if not host.catalog.has_stream("demo"):
            host.engine.create_stream(DEMO_STREAM)
            report.streams.append("demo")
        if not host.catalog.has_rule("demo"):
            rule = host.create_rule({"id": "demo", "sql": DEMO_SQL,
                                     "actions": [{"file": {"path": str(out / "demo.jsonl")}}]})
            if rule.triggered:
                report.rules_started.append(rule.id)
        report.demo = True
        log.info("--demo: stream demo (random source) and rule demo (fastmath functions, file sink) are"
                 " running; the rule writes %s", out / "demo.jsonl")
    except PlutinoError as exc:
        report.failures["demo"] = str(exc)
        log.error("--demo: the demo stream or rule could not be created: %s", exc)


__all__ = ["DEMO_SQL", "DEMO_STREAM", "bundled_plugins_dir", "install_bundled", "install_demo"]
