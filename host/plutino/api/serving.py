"""Serving the API: the listening socket, the logs, uvicorn, and a clean stop on signals.

:func:`serve` is ``plutino serve``. It binds the socket before anything else, so a port in use
fails at once with a message saying what to do; then locks the data directory
(:class:`~plutino.server_lock.ServerLock`: one server per data dir, and the CLI's offline
commands refuse it while the server runs), starts the :class:`~plutino.host.Host`, runs uvicorn
until SIGINT or SIGTERM, and finally stops the rules (flushing their sinks) and closes the
store, with further signals ignored so that the flush is not cut short.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import logging.handlers
import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from plutino.config import DataDir
from plutino.errors import PlutinoError
from plutino.secrets import SecretFilter
from plutino.server_lock import ServerLock

log = logging.getLogger("plutino.host")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9081


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
        setattr(handler, "_plutino", True)  # noqa: B010 - marks our handlers, to remove them later
        handler.addFilter(SecretFilter())  # no password, token or URL credentials in a log line
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
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP, and without it every answer on a kept-alive connection waits
    # ~40 ms for a delayed ACK (Nagle's algorithm holds the body back behind the headers).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
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
          demo: bool = False, bundled_dir: Path | None = None, log_level: str = "info",
          allowed_file_dirs: Sequence[Path] = ()) -> int:
    """``plutino serve``: run until SIGINT/SIGTERM; return the process exit code.

    ``allowed_file_dirs`` (``--allow-file-dir``): folders install requests may read packages
    from, on top of the setting of that name."""
    import uvicorn

    from plutino.api import create_app
    from plutino.host import Host

    data = DataDir.from_env(data_dir).ensure()
    configure_logging(data, log_level)
    try:
        sock = bind(host, port)
    except PlutinoError as exc:
        log.error("%s", exc)
        return 1
    try:
        lock = ServerLock.take(data.root, client_url(host, sock.getsockname()[1]))
    except PlutinoError as exc:
        sock.close()
        log.error("%s", exc)
        return 1
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    the_host: Any = None
    try:
        the_host = Host(data, settings=_package_settings(data, allowed_file_dirs))
        the_host.start(demo=demo, bundled_dir=bundled_dir, background=True)  # the API opens at once
        bound_port = sock.getsockname()[1]
        from plutino.api.access import load_access_settings

        access = dataclasses.replace(load_access_settings(data), bind_host=host)
        app = create_app(the_host, access)
        if access.token:
            log.info("requests need the bearer token (PLUTINO_TOKEN)%s",
                     "; GETs are open (api.public_reads)" if access.public_reads else "")
        elif host not in ("127.0.0.1", "::1", "localhost"):
            log.warning("listening on %s without a token: anyone who can reach it can install plugins and"
                        " change rules; set PLUTINO_TOKEN (or api.token in %s)", host, data.settings_file)
        if host not in ("127.0.0.1", "::1", "localhost") and not access.allowed_hosts:
            log.info("requests must name this server by an address it listens on (or --host); add the DNS"
                     " names it is reached by to api.allowed_hosts (PLUTINO_ALLOWED_HOSTS)")
        config = uvicorn.Config(app, log_config=None, lifespan="off", access_log=log_level == "debug",
                                # the whole stop must fit in 5 s; uvicorn waits a float, its hint says int
                                timeout_graceful_shutdown=0.5)  # type: ignore[arg-type]
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
            lock.release()
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous)
    return 0


def client_url(host: str, port: int) -> str:
    """The URL a client on this machine reaches a server listening on ``host``:``port`` by."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _package_settings(data: DataDir, extra_dirs: Sequence[Path]) -> Any:
    """The package settings of ``data``, with ``extra_dirs`` added to ``allowed_file_dirs``."""
    import dataclasses

    from plutino.config import load_settings

    settings = load_settings(data)
    extra = tuple(Path(d).expanduser().absolute() for d in extra_dirs)
    return dataclasses.replace(settings, allowed_file_dirs=(*settings.allowed_file_dirs, *extra))


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "bind", "client_url", "configure_logging", "serve"]
