"""``plutino serve``, and the commands that talk to a running server over its REST API.

    plutino serve [--host 127.0.0.1] [--port 9081] [--data-dir DIR] [--demo]
    plutino stream create|list|describe|update|drop ...
    plutino rule create|list|describe|status|start|stop|restart|update|drop ...
    plutino query "SELECT ..." [--rows N] [--seconds S]
    plutino plugin install|update|list|describe|delete ...

Every client command takes ``--url`` (default ``$PLUTINO_URL``, else http://127.0.0.1:9081)
and ``--json`` (the server's answer as JSON, for scripts). The ``plugin`` commands also work
without a server on a data directory (``--data-dir`` or ``$PLUTINO_HOME``): see
:func:`dual_plugin_commands`. Exit codes: 0 done, 1 the server (or the connection) refused,
2 a usage mistake.

``serve`` is here; the client commands are in :mod:`plutino.cli.streams`,
:mod:`plutino.cli.rules`, :mod:`plutino.cli.query` and :mod:`plutino.cli.remote_plugins`, and
what they share in :mod:`plutino.cli.remote`. :func:`register` adds them all to the CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from plutino.api.client import Client, ServerError  # noqa: F401  (importable from here, as before)
from plutino.cli.query import query
from plutino.cli.remote import DEFAULT_URL, format_table  # noqa: F401  (importable from here, as before)
from plutino.cli.remote_plugins import DUAL_COMMANDS, dual_plugin_commands
from plutino.cli.rules import rule
from plutino.cli.streams import stream
from plutino.config import KINDS

_kind_choice = click.Choice(list(KINDS))


# -------------------------------------------------------------------- serve


@click.command("serve")
@click.option("--host", "bind_host", default="127.0.0.1", show_default=True,
              help="The address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), envvar="PLUTINO_PORT", default=9081, show_default=True,
              help="The port ($PLUTINO_PORT); 0 picks a free one.")
@click.option("--data-dir", envvar="PLUTINO_HOME", default="plutino_data", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="The data directory ($PLUTINO_HOME).")
@click.option("--demo", is_flag=True,
              help="On an empty data dir: install the bundled plugins, create stream demo and rule demo.")
@click.option("--bundled-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Where the bundled plugins are (default: the package's bundled/, else build/native/plugins).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
@click.option("--allow-file-dir", "allow_file_dirs", multiple=True, type=click.Path(path_type=Path),
              help="A folder install requests may read package zips from, besides DATA_DIR/uploads (repeatable).")
def serve(bind_host: str, port: int, data_dir: Path, demo: bool, bundled_dir: Path | None, log_level: str,
          allow_file_dirs: tuple[Path, ...]) -> None:
    """Run the server: the REST API on HOST:PORT over the data directory.

    Loads the installed plugins, the streams and the rules, and starts the rules that were
    running. Ctrl-C or SIGTERM stops the rules (flushing their sinks) and exits. With
    PLUTINO_TOKEN set, POST, PUT and DELETE requests need 'Authorization: Bearer <token>'."""
    from plutino.api.serving import serve as run

    sys.exit(run(data_dir, bind_host, port, demo=demo, bundled_dir=bundled_dir, log_level=log_level,
                 allowed_file_dirs=allow_file_dirs))


# -------------------------------------------------------------------- registration


def register(main: click.Group, plugin: click.Group) -> None:
    """Add these commands to the ``plutino`` group, and make the ``plugin`` package commands
    work over REST too."""
    for command in (serve, stream, rule, query):
        main.add_command(command)
    local = [plugin.commands[name] for name in DUAL_COMMANDS if name in plugin.commands]
    for command in dual_plugin_commands(local):
        plugin.add_command(command)


__all__ = ["Client", "DEFAULT_URL", "ServerError", "dual_plugin_commands", "format_table", "query", "register",
           "rule", "serve", "stream"]
