"""The Plutino server: one :class:`Host` owning a data directory, served over HTTP by uvicorn.

The Host ties the parts together and keeps them consistent with the store:

- the data directory and its SQLite store (:mod:`plutino.config`, :mod:`plutino.store`);
- the registry, with the built-in I/O plugins, and the plugin manager that loads installed
  plugins into it (:mod:`plutino.manager`);
- the rule engine (:class:`plutino.engine.RuleManager`), whose catalog writes every stream and
  rule to the store, and which sees the registry through the per-plugin meters of ``/metrics``.

A rule's *desired* state ("running" or "stopped") is kept in the store beside its definition:
creating or starting a rule sets it running, stopping sets it stopped, a shutdown leaves it as
it is. At start-up the rules whose desired state is running are started again.

:func:`serve` is ``plutino serve``: it binds the socket first (so a port in use fails at once
with a clear message), starts the Host, runs uvicorn until SIGINT or SIGTERM, then stops the
rules (which flushes their sinks) and closes the store.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plutino.api.metering import MeteredRegistry, PluginMeters
from plutino.api.query import QUERY_PREFIX
from plutino.config import DataDir, Settings
from plutino.engine import BUILTIN_NAMES, Catalog, RuleManager
from plutino.engine.errors import NotFoundError
from plutino.engine.plugin_config import YamlConfigResolver
from plutino.errors import PlutinoError
from plutino.manager import PluginManager
from plutino.registry import Registry
from plutino.store import Store

log = logging.getLogger("plutino.server")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9081

DEMO_STREAM = 'CREATE STREAM demo () WITH (TYPE="random", CONF_KEY="ext", FORMAT="json")'
DEMO_SQL = ("SELECT count, temperature, mul2add1(temperature) AS t2, upperAscii(name) AS sensor "
            "FROM demo WHERE count > 10")
_BUNDLED_FIX = ("build them with `make build` (installed package) or run the tests once (source tree:"
                " build/test-native/plugins), or pass --bundled-dir")


def bundled_plugins_dir() -> Path | None:
    """Where the bundled plugins are: ``plutino/bundled`` in an installed package, else (in a
    source tree) ``build/test-native/plugins``, built by the tests' fixture. None if neither."""
    import plutino

    package = Path(plutino.__file__).resolve().parent
    candidates = [package / "bundled"]
    repo = package.parent.parent
    if (repo / "native_plugins").is_dir():
        candidates.append(repo / "build" / "test-native" / "plugins")
    for folder in candidates:
        if any((folder / f"{kind}s").glob("*.so") for kind in ("source", "sink", "function")):
            return folder
    return None


@dataclass
class StartReport:
    """What :meth:`Host.start` did, for the log and for tests."""

    plugins: dict[str, list[str]] = field(default_factory=dict)
    streams: list[str] = field(default_factory=list)
    rules_started: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    bundled: list[str] = field(default_factory=list)
    demo: bool = False


class Host:
    """Everything one Plutino server owns. Thread-safe where its parts are (all of them)."""

    def __init__(self, data_dir: DataDir | str | os.PathLike[str] | None = None, *,
                 settings: Settings | None = None) -> None:
        from plutino.io import builtin_plugins

        self.data = (data_dir if isinstance(data_dir, DataDir) else DataDir.from_env(data_dir)).ensure()
        self.store = Store(self.data.store_path)
        self.registry = Registry(BUILTIN_NAMES)
        for plugin in builtin_plugins():
            self.registry.register(plugin)
        self.plugins = PluginManager(self.data, settings, registry=self.registry, store=self.store)
        self.meters = PluginMeters()
        self.catalog = Catalog(on_put=self._stored, on_delete=self._unstored)
        resolver = YamlConfigResolver({"source": [self.data.etc_dir("source")], "sink": [self.data.etc_dir("sink")]})
        self.engine = RuleManager(MeteredRegistry(self.registry, self.meters), self.catalog, config_for=resolver)
        self.plugins.in_use = self.rules_using
        self.plugins.stop_rules = self._stop_for_plugin
        self.started_at = time.time()
        #: Why a rule that should run could not be started at start-up, by rule id.
        self.start_failures: dict[str, str] = {}
        self._closed = False

    # ---------------------------------------------------------------- life cycle

    def start(self, demo: bool = False, bundled_dir: Path | None = None) -> StartReport:
        """Load plugins, streams and rules from the store; start the rules that were running.

        ``demo``: on a data directory with nothing in it yet, install the bundled plugins
        (from ``bundled_dir``, default :func:`bundled_plugins_dir`) and create the demo stream
        and rule. Nothing here is fatal: what fails is logged and shown by the API.
        """
        report = StartReport()
        fresh = not (self.store.list_plugins() or self.store.list_entries("streams")
                     or self.store.list_entries("rules"))
        report.plugins = self.plugins.load_all()
        for failed in report.plugins["failed"]:
            log.error("plugin %s did not load; see GET /plugins/<kind>s/<name> for the reason", failed)
        self._restore(report)
        if demo:
            if fresh:
                self._install_demo(report, bundled_dir)
            else:
                log.info("--demo: %s already holds plugins, streams or rules; the demo is set up only on an"
                         " empty data directory", self.data.root)
        log.info("started: plugins %s, streams %s, rules running %s%s", len(report.plugins["loaded"]),
                 len(report.streams), len(report.rules_started),
                 f", failures {sorted(report.failures)}" if report.failures else "")
        return report

    def _restore(self, report: StartReport) -> None:
        for entry in self.store.list_entries("streams"):
            try:
                self.catalog.load(streams=[entry.body])
                report.streams.append(entry.id)
            except PlutinoError as exc:
                report.failures[f"stream/{entry.id}"] = str(exc)
                log.error("stream %s could not be restored: %s", entry.id, exc)
        wanted: list[str] = []
        for entry in self.store.list_entries("rules"):
            try:
                self.catalog.load(rules=[entry.body])
            except PlutinoError as exc:
                report.failures[f"rule/{entry.id}"] = str(exc)
                log.error("rule %s could not be restored: %s", entry.id, exc)
                continue
            if entry.state == "running" or (entry.state == "" and entry.body.get("triggered", True) is not False
                                            and (entry.body.get("options") or {}).get("triggered", True) is not False):
                wanted.append(entry.id)
        for rule_id in wanted:
            try:
                self.engine.start_rule(rule_id)
                report.rules_started.append(rule_id)
            except Exception as exc:  # noqa: BLE001 - one rule's failure never stops the host
                reason = str(exc) if isinstance(exc, PlutinoError) else f"{type(exc).__name__}: {exc}"
                self.start_failures[rule_id] = reason
                report.failures[f"rule/{rule_id}"] = reason
                log.error("rule %s did not start: %s", rule_id, reason)

    def close(self) -> None:
        """Stop every rule (their sinks are flushed and closed), then close the store."""
        if self._closed:
            return
        self._closed = True
        log.info("shutting down: stopping rules")
        self.engine.shutdown()
        self.store.close()
        log.info("shut down")

    # ---------------------------------------------------------------- the catalog's store hooks

    def _stored(self, kind: str, name: str, record: dict[str, Any]) -> None:
        if kind == "rule":
            if name.startswith(QUERY_PREFIX):
                return
            previous = self.store.get_entry("rules", name)
            self.store.put_entry("rules", name, record, previous.state if previous else "")
        else:
            self.store.put_entry("streams", name, record)

    def _unstored(self, kind: str, name: str) -> None:
        self.store.delete_entry("rules" if kind == "rule" else "streams", name)

    def _want(self, rule_id: str, state: str) -> None:
        if not rule_id.startswith(QUERY_PREFIX):
            self.store.set_entry_state("rules", rule_id, state)

    # ---------------------------------------------------------------- rules, with their desired state

    def create_rule(self, body: Mapping[str, Any]) -> Any:
        rule = self.engine.create_rule(body)
        self._want(rule.id, "running" if rule.triggered else "stopped")
        return rule

    def update_rule(self, body: Mapping[str, Any]) -> Any:
        rule = self.engine.update_rule(body)
        self.start_failures.pop(rule.id, None)
        self._want(rule.id, "running" if self.engine.rule_status(rule.id).get("status") == "running" else "stopped")
        return rule

    def start_rule(self, rule_id: str) -> None:
        self.engine.start_rule(rule_id)
        self.start_failures.pop(rule_id, None)
        self._want(rule_id, "running")

    def restart_rule(self, rule_id: str) -> None:
        self.engine.restart_rule(rule_id)
        self.start_failures.pop(rule_id, None)
        self._want(rule_id, "running")

    def stop_rule(self, rule_id: str) -> None:
        self.engine.stop_rule(rule_id)
        self.start_failures.pop(rule_id, None)
        self._want(rule_id, "stopped")

    def delete_rule(self, rule_id: str) -> None:
        self.engine.delete_rule(rule_id)
        self.start_failures.pop(rule_id, None)

    def rule_status(self, rule_id: str) -> dict[str, Any]:
        status = self.engine.rule_status(rule_id)
        failure = self.start_failures.get(rule_id)
        if failure and status.get("status") == "stopped":
            status = {**status, "status": f"stopped: {failure}"}
        return status

    def list_rules(self) -> list[dict[str, Any]]:
        out = []
        for item in self.engine.list_rules():
            if item["id"].startswith(QUERY_PREFIX):
                continue
            failure = self.start_failures.get(item["id"])
            if failure and item.get("status") == "stopped":
                item = {**item, "status": f"stopped: {failure}"}
            out.append(item)
        return out

    def runtimes(self) -> list[Any]:
        """The current (or last) run of every rule that has run in this process."""
        found = []
        for item in self.engine.list_rules():
            try:
                found.append(self.engine.runtime(item["id"]))
            except NotFoundError:
                continue
        return found

    def rules_using(self, kind: str, name: str) -> list[str]:
        """Running rules that use plugin ``name`` of ``kind`` (the plugin manager asks before
        deleting or replacing a plugin)."""
        users = []
        for runtime in self.runtimes():
            if runtime.state != "running":
                continue
            plan = runtime.plan
            if ((kind == "source" and plan.stream.type == name)
                    or (kind == "sink" and any(a.sink == name for a in runtime.rule.actions))
                    or (kind == "function" and any(u.plugin == name for u in plan.uses))):
                users.append(runtime.rule.id)
        return sorted(users)

    def _stop_for_plugin(self, rule_ids: Any, reason: str) -> None:
        for rule_id in rule_ids:
            try:
                self.engine.stop_rule(rule_id)
                self._want(rule_id, "stopped")
                log.warning("rule %s %s", rule_id, reason)
            except NotFoundError:
                continue

    # ---------------------------------------------------------------- the demo

    def install_bundled(self, folder: Path) -> list[str]:
        """Pack and install every bundled plugin in ``folder/{sources,sinks,functions}`` that is
        not installed yet; return ``kind/name`` of those installed. Failures are logged."""
        from plutino.packages import pack

        installed = []
        with tempfile.TemporaryDirectory(prefix="bundled-", dir=self.data.staging_dir) as tmp:
            for kind in ("source", "sink", "function"):
                for so in sorted((folder / f"{kind}s").glob("*.so")):
                    name = so.stem.split("@")[0]
                    if self.store.get_plugin(kind, name) is not None:
                        continue
                    try:
                        package = pack(so, Path(tmp) / f"{name}.zip")
                        self.plugins.install(kind, name, str(package))
                        installed.append(f"{kind}/{name}")
                    except PlutinoError as exc:
                        log.error("bundled %s plugin %s was not installed: %s", kind, name, exc)
        return installed

    def _install_demo(self, report: StartReport, bundled_dir: Path | None) -> None:
        folder = bundled_dir or bundled_plugins_dir()
        if folder is None or not folder.is_dir():
            log.error("--demo: the bundled plugins were not found%s; %s",
                      f" in {folder}" if folder else "", _BUNDLED_FIX)
            return
        report.bundled = self.install_bundled(folder)
        log.info("--demo: installed bundled plugins %s from %s", ", ".join(report.bundled) or "none", folder)
        out = self.data.root / "out"
        out.mkdir(parents=True, exist_ok=True)
        try:
            if not self.catalog.has_stream("demo"):
                self.engine.create_stream(DEMO_STREAM)
            if not self.catalog.has_rule("demo"):
                self.create_rule({"id": "demo", "sql": DEMO_SQL,
                                  "actions": [{"file": {"path": str(out / "demo.jsonl")}}]})
            report.demo = True
            log.info("--demo: stream demo (random source) and rule demo (fastmath functions, file sink) are"
                     " running; the rule writes %s", out / "demo.jsonl")
        except PlutinoError as exc:
            report.failures["demo"] = str(exc)
            log.error("--demo: the demo stream or rule could not be created: %s", exc)


# -------------------------------------------------------------------- logging


class _JsonLines(logging.Formatter):
    """One JSON object per record: for log shippers and ``jq``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(data: DataDir, level: str = "info") -> None:
    """Human-readable lines on stderr; JSON lines in ``log/plutino.log`` (rotated at 10 MB)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_plutino", False):
            root.removeHandler(handler)
            handler.close()
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    data.log_dir.mkdir(parents=True, exist_ok=True)
    file = logging.handlers.RotatingFileHandler(data.log_dir / "plutino.log", maxBytes=10 * 1024 * 1024,
                                                backupCount=5, encoding="utf-8")
    file.setFormatter(_JsonLines())
    for handler in (stderr, file):
        handler._plutino = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())


# -------------------------------------------------------------------- serving


class _Stop(Exception):
    """Raised by our SIGTERM handler, so the shutdown path runs (not the default kill)."""


def _raise_stop(signum: int, frame: Any) -> None:
    raise _Stop(signum)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or a PlutinoError that says what to do."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = ("another server (another plutino serve?) listens there: stop it, or choose another port with"
                " --port or PLUTINO_PORT") if exc.errno in (98, 48) else "check --host and --port"
        raise PlutinoError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; {hint}") from None
    sock.set_inheritable(True)
    return sock


def serve(data_dir: str | os.PathLike[str] | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          demo: bool = False, bundled_dir: Path | None = None, log_level: str = "info") -> int:
    """``plutino serve``: run until SIGINT/SIGTERM; return the process exit code."""
    import uvicorn

    from plutino.api import create_app

    data = DataDir.from_env(data_dir).ensure()
    configure_logging(data, log_level)
    try:
        sock = bind(host, port)
    except PlutinoError as exc:
        log.error("%s", exc)
        return 1
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    the_host: Host | None = None
    try:
        the_host = Host(data)
        the_host.start(demo=demo, bundled_dir=bundled_dir)
        bound_port = sock.getsockname()[1]
        app = create_app(the_host)
        config = uvicorn.Config(app, log_config=None, lifespan="off", access_log=log_level == "debug",
                                timeout_graceful_shutdown=5)
        server = uvicorn.Server(config)
        log.info("serving the REST API on http://%s:%d (data dir %s); Ctrl-C stops", host, bound_port, data.root)
        server.run(sockets=[sock])
    except (_Stop, KeyboardInterrupt):
        pass
    except PlutinoError as exc:
        log.error("%s", exc)
        return 1
    finally:
        # a second Ctrl-C or SIGTERM must not cut the flushing of the sinks short
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if the_host is not None:
                the_host.close()
        finally:
            sock.close()
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous)
    return 0


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "Host", "QUERY_PREFIX", "StartReport", "bundled_plugins_dir",
           "configure_logging", "serve"]
