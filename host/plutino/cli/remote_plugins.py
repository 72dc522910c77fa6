"""``plutino plugin install|update|list|describe|delete|trust|keys|untrust`` over REST, or locally
on a data directory.

The local commands are :mod:`plutino.cli.packages`'s; :func:`dual_plugin_commands` makes each
of them work on a running server too (see there for how the place to act on is chosen). A
local command that would change a data directory a running server holds is refused, naming
the same command with that server's ``--url`` (:mod:`plutino.server_lock`): the server would
not see the change until it restarts. (It is not sent to the server unasked: over REST a
package is read only from the folders the server allows, and the answer differs.)
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from plutino.api.client import Client, ServerError
from plutino.cli.remote import fail, quote, say, server_errors
from plutino.cli.server_address import COMMAND, GROUP, URL_HELP, asked_url, fallback_url
from plutino.config import KINDS

#: The commands that change the data directory when they work on it.
OFFLINE_WRITERS = frozenset({"install", "update", "delete", "trust", "untrust"})


def _file_url(location: str) -> str:
    if "://" in location:
        return location
    path = Path(location)
    if not path.is_file():
        raise ServerError(f"{location} does not exist or is not a file; give the package zip's path or URL")
    return path.absolute().as_uri()


def _rest_install(method: str, url: str, location: str, kind: str | None, name: str | None,
                  shell_params: Sequence[str], sha256: str | None, as_json: bool) -> None:
    file_url = _file_url(location)
    if kind is None or name is None:
        from plutino.cli.package_identity import package_identity

        found_kind, found_name = package_identity(location)
        kind, name = kind or found_kind, name or found_name
    body: dict[str, Any] = {"name": name, "file": file_url, "shellParas": list(shell_params)}
    if sha256:
        body["sha256"] = sha256
    client = Client(url, timeout=300)
    path = f"/plugins/{kind}s" + ("" if method == "POST" else f"/{quote(name)}")
    answer = client.call(method, path, body)
    if as_json:
        say(client.call("GET", f"/plugins/{kind}s/{quote(name)}"), True)
    else:
        click.echo(answer)


def _rest_list(url: str, kind: str | None, as_json: bool) -> None:
    client = Client(url)
    described = [client.call("GET", f"/plugins/{k}s/{quote(n)}") | {"kind": k}
                 for k in ([kind] if kind else KINDS) for n in client.call("GET", f"/plugins/{k}s")]
    if as_json:
        say(described, True)
        return
    if not described:
        click.echo("no plugins installed" + (f" of kind {kind}" if kind else ""))
    for d in described:
        extra = f"  ({', '.join(d['functions'])})" if d.get("functions") else ""
        error = f"  error: {d['error']}" if d.get("error") else ""
        click.echo(f"{d['kind']:<9} {d['name']:<24} {d['version']:<10} {d.get('status', '')}{extra}{error}")


def _rest_describe(url: str, kind: str, name: str, as_json: bool) -> None:
    info = Client(url).call("GET", f"/plugins/{kind}s/{quote(name)}")
    if as_json:
        say(info, True)
        return
    for key, value in info.items():
        if isinstance(value, (list, dict)):
            value = json.dumps(value) if isinstance(value, dict) else ", ".join(map(str, value))
        click.echo(f"{key + ':':<15} {'' if value is None else value}")


def _rest_delete(url: str, kind: str, name: str, force: bool, as_json: bool) -> None:
    suffix = "?force=true" if force else ""
    say(Client(url).call("DELETE", f"/plugins/{kind}s/{quote(name)}{suffix}"), as_json)


def _rest_trust(url: str, public_key: Path, name: str | None, as_json: bool) -> None:
    body = {"name": name or public_key.stem, "key": public_key.read_text(encoding="ascii", errors="replace")}
    say(Client(url).call("POST", "/plugins/trusted_keys", body), as_json)


def _rest_keys(url: str, as_json: bool) -> None:
    found = Client(url).call("GET", "/plugins/trusted_keys")
    if as_json:
        say(found, True)
        return
    if not found:
        click.echo("no trusted keys")
    for key in found:
        click.echo(f"{key['name']:<24} {key['key_id']}")


def _rest_untrust(url: str, name: str, as_json: bool) -> None:
    say(Client(url).call("DELETE", f"/plugins/trusted_keys/{quote(name)}"), as_json)


_REST: dict[str, Callable[..., None]] = {
    "install": lambda url, location, kind, name, shell_params, sha256, as_json: _rest_install(
        "POST", url, location, kind, name, shell_params, sha256, as_json),
    "update": lambda url, location, kind, name, shell_params, sha256, as_json: _rest_install(
        "PUT", url, location, kind, name, shell_params, sha256, as_json),
    "list": _rest_list,
    "describe": _rest_describe,
    "delete": _rest_delete,
    "trust": _rest_trust,
    "keys": _rest_keys,
    "untrust": _rest_untrust,
}

DUAL_COMMANDS = tuple(_REST)  # the plugin commands that work over REST too


def dual_plugin_commands(local: Sequence[click.Command]) -> list[click.Command]:
    """``plugin install|update|list|describe|delete`` that talk to a server or work locally.

    Built from the local commands of :mod:`plutino.cli.packages` (which they call unchanged
    for local work). Where they act: ``--url`` given (after the command or before it) -> that
    server; ``--data-dir`` given -> that data directory; otherwise ``$PLUTINO_URL`` -> that
    server, ``$PLUTINO_HOME`` -> that data directory, and with neither, the server on
    ``$PLUTINO_PORT`` or at http://127.0.0.1:9081 (:mod:`plutino.cli.server_address`).
    """
    by_name = {c.name: c for c in local}
    return [_dual(by_name[name], _REST[name]) for name in _REST if name in by_name]


def _dual(original: click.Command, remote: Callable[..., None]) -> click.Command:
    params: list[click.Parameter] = [p for p in original.params if p.name != "data_dir"]
    has_json = any(p.name == "as_json" for p in params)
    local_names = {p.name for p in original.params}
    params.append(click.Option(["--data-dir", "data_dir"], envvar="PLUTINO_HOME", default=None,
                               type=click.Path(file_okay=False, path_type=Path),
                               help="Work on this data directory instead of a server ($PLUTINO_HOME)."))
    params.append(click.Option(["--url"], default=None, metavar="URL", help=URL_HELP))
    if not has_json:
        params.append(click.Option(["--json", "as_json"], is_flag=True,
                                   help="Print the server's answer as JSON (with --url)."))

    @server_errors
    def callback(**kwargs: Any) -> None:
        ctx = click.get_current_context()
        url, origin = asked_url(ctx, kwargs.pop("url"))
        data_dir = kwargs.get("data_dir")
        url_given = origin in (COMMAND, GROUP)
        dir_given = ctx.get_parameter_source("data_dir") == ParameterSource.COMMANDLINE
        if url_given and dir_given:
            raise click.UsageError("give --url (a server) or --data-dir (a data directory), not both")
        use_local = dir_given or (not url_given and url is None and data_dir is not None)
        if use_local:
            if kwargs.get("as_json") and not has_json:
                raise click.UsageError("--json needs a server (--url); on a data directory this command prints text")
            local = {k: v for k, v in kwargs.items() if k in local_names}
            if original.name in OFFLINE_WRITERS:
                _offline_change(ctx, Path(str(data_dir)), lambda: original.callback(**local))  # type: ignore[misc]
            else:
                original.callback(**local)  # type: ignore[misc]
            return
        kwargs.pop("data_dir", None)
        remote(url or fallback_url(), **kwargs)

    help_text = (original.help or "") + (
        "\n\nWorks on a running server (--url, $PLUTINO_URL, $PLUTINO_PORT; see --url) or, with"
        " --data-dir (or $PLUTINO_HOME), directly on a data directory, unless a server serves it.")
    return click.Command(original.name, params=params, callback=callback, help=help_text,
                         short_help=original.short_help or (original.help or "").split("\n")[0])


def _offline_change(ctx: click.Context, data_dir: Path, change: Callable[[], None]) -> None:
    """``change`` made on ``data_dir`` while no server holds it; refused, naming the same
    command sent to the server, while one does."""
    from plutino.config import DataDir
    from plutino.server_lock import DataDirServed, offline_change

    try:
        with offline_change(DataDir.from_env(data_dir).root):
            change()
    except DataDirServed as exc:
        fail(f"the data dir {exc.root} is served by the Plutino server at {exc.url}, which would not see a change"
             f" made here until it restarts; make it through the server: {_same_command(ctx, exc.url)}")


def _same_command(ctx: click.Context, url: str) -> str:
    """The command being run, as the user typed it, on the server at ``url`` instead of a data dir."""
    words = ["plutino", *ctx.command_path.split()[1:]]
    arguments: list[str] = []
    options: list[str] = []
    for param in ctx.command.params:
        name = param.name or ""
        if name in ("data_dir", "url") or ctx.get_parameter_source(name) != ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[name]
        values = list(value) if isinstance(value, (tuple, list)) else [value]
        if isinstance(param, click.Argument):
            arguments += [str(v) for v in values]
        elif isinstance(param, click.Option) and param.is_flag:
            options += [param.opts[0]] if value else []
        else:
            for v in values:
                options += [param.opts[0], str(v)]
    return shlex.join([*words, *arguments, *options, "--url", url])


__all__ = ["DUAL_COMMANDS", "OFFLINE_WRITERS", "dual_plugin_commands"]
