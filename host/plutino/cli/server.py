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
"""

from __future__ import annotations

import json
import sys
import urllib.parse
import zipfile
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from plutino.api.client import Client, ServerError
from plutino.config import KINDS

DEFAULT_URL = "http://127.0.0.1:9081"
_kind_choice = click.Choice(list(KINDS))


# -------------------------------------------------------------------- client options


def _client_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--json", "as_json", is_flag=True, help="Print the server's answer as JSON.")(command)
    return click.option("--url", envvar="PLUTINO_URL", default=DEFAULT_URL, show_default=True,
                        help="The server's base URL ($PLUTINO_URL).")(command)


def _server_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """A refusal or an unreachable server: one line on stderr, exit code 1."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ServerError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper


def _say(answer: Any, as_json: bool) -> None:
    """A text answer as it is (``--json``: as ``{"message": ...}``); JSON pretty-printed."""
    if isinstance(answer, str):
        click.echo(json.dumps({"message": answer}) if as_json else answer)
    else:
        click.echo(json.dumps(answer, indent=2))


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


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
              help="Where the bundled plugins are (default: the package's bundled/, else build/test-native/plugins).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
def serve(bind_host: str, port: int, data_dir: Path, demo: bool, bundled_dir: Path | None, log_level: str) -> None:
    """Run the server: the REST API on HOST:PORT over the data directory.

    Loads the installed plugins, the streams and the rules, and starts the rules that were
    running. Ctrl-C or SIGTERM stops the rules (flushing their sinks) and exits. With
    PLUTINO_TOKEN set, POST, PUT and DELETE requests need 'Authorization: Bearer <token>'."""
    from plutino.api.serving import serve as run

    sys.exit(run(data_dir, bind_host, port, demo=demo, bundled_dir=bundled_dir, log_level=log_level))


# -------------------------------------------------------------------- streams


@click.group("stream")
def stream() -> None:
    """Create, list, describe and drop streams on a running server."""


@stream.command("create")
@click.argument("sql")
@_client_options
@_server_errors
def stream_create(sql: str, url: str, as_json: bool) -> None:
    """Create a stream: SQL is a CREATE STREAM statement."""
    _say(Client(url).call("POST", "/streams", {"sql": sql}), as_json)


@stream.command("update")
@click.argument("name")
@click.argument("sql")
@_client_options
@_server_errors
def stream_update(name: str, sql: str, url: str, as_json: bool) -> None:
    """Replace stream NAME by the CREATE STREAM statement SQL."""
    _say(Client(url).call("PUT", f"/streams/{_quote(name)}", {"sql": sql}), as_json)


@stream.command("list")
@_client_options
@_server_errors
def stream_list(url: str, as_json: bool) -> None:
    """List the streams."""
    names = Client(url).call("GET", "/streams")
    if as_json:
        _say(names, True)
    else:
        click.echo("\n".join(names) if names else "no streams")


@stream.command("describe")
@click.argument("name")
@_client_options
@_server_errors
def stream_describe(name: str, url: str, as_json: bool) -> None:
    """Show a stream's fields, options and statement."""
    info = Client(url).call("GET", f"/streams/{_quote(name)}")
    if as_json:
        _say(info, True)
        return
    click.echo(f"stream {info.get('Name', name)}")
    fields = info.get("StreamFields") or []
    click.echo("fields:" + ("" if fields else "   (schemaless: columns come from the data)"))
    for f in fields:
        click.echo(f"  {f['Name']:<24} {f['FieldType']}")
    options = ", ".join(f"{k}={v}" for k, v in (info.get("Options") or {}).items())
    click.echo(f"options:   {options}")
    click.echo(f"statement: {info.get('Statement', '')}")


@stream.command("drop")
@click.argument("name")
@_client_options
@_server_errors
def stream_drop(name: str, url: str, as_json: bool) -> None:
    """Drop a stream (refused while rules read it)."""
    _say(Client(url).call("DELETE", f"/streams/{_quote(name)}"), as_json)


# -------------------------------------------------------------------- rules


@click.group("rule")
def rule() -> None:
    """Create, list, start, stop and drop rules on a running server."""


def _rule_body(rule_id: str | None, definition: str | None, file: Path | None) -> dict[str, Any]:
    if (definition is None) == (file is None):
        raise click.UsageError("give the rule as JSON text or with -f FILE (one of them), e.g. "
                               """plutino rule create r1 '{"sql": "SELECT * FROM demo", "actions": [{"log": {}}]}'""")
    text = file.read_text(encoding="utf-8") if file is not None else definition
    try:
        body = json.loads(text or "")
    except json.JSONDecodeError as exc:
        where = file or "the rule"
        raise click.UsageError(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise click.UsageError("a rule is a JSON object with id, sql and actions")
    if rule_id is not None:
        if body.setdefault("id", rule_id) != rule_id:
            raise click.UsageError(f"the rule's JSON has id {body['id']!r}, the command says {rule_id!r}")
    return body


_rule_file = click.option("-f", "--file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                          default=None, help="Read the rule's JSON from FILE.")


@rule.command("create")
@click.argument("rule_id", metavar="[ID]", required=False)
@click.argument("definition", metavar="[JSON]", required=False)
@_rule_file
@_client_options
@_server_errors
def rule_create(rule_id: str | None, definition: str | None, file: Path | None, url: str, as_json: bool) -> None:
    """Create (and start) a rule from its JSON: {"id", "sql", "actions", "options"}.

    \b
    plutino rule create r1 '{"sql": "SELECT * FROM demo", "actions": [{"log": {}}]}'
    plutino rule create -f rule.json"""
    if rule_id is not None and rule_id.lstrip().startswith("{") and definition is None:
        rule_id, definition = None, rule_id  # `plutino rule create '{...}'`
    _say(Client(url).call("POST", "/rules", _rule_body(rule_id, definition, file)), as_json)


@rule.command("update")
@click.argument("rule_id", metavar="ID")
@click.argument("definition", metavar="[JSON]", required=False)
@_rule_file
@_client_options
@_server_errors
def rule_update(rule_id: str, definition: str | None, file: Path | None, url: str, as_json: bool) -> None:
    """Replace rule ID by a new definition; a running rule restarts with it."""
    _say(Client(url).call("PUT", f"/rules/{_quote(rule_id)}", _rule_body(rule_id, definition, file)), as_json)


@rule.command("list")
@_client_options
@_server_errors
def rule_list(url: str, as_json: bool) -> None:
    """List the rules and their status."""
    rules = Client(url).call("GET", "/rules")
    if as_json:
        _say(rules, True)
    elif not rules:
        click.echo("no rules")
    else:
        click.echo(format_table(["id", "status"], rules))


@rule.command("describe")
@click.argument("rule_id", metavar="ID")
@_client_options
@_server_errors
def rule_describe(rule_id: str, url: str, as_json: bool) -> None:
    """Show a rule as it was submitted."""
    _say(Client(url).call("GET", f"/rules/{_quote(rule_id)}"), True)


@rule.command("status")
@click.argument("rule_id", metavar="ID")
@_client_options
@_server_errors
def rule_status(rule_id: str, url: str, as_json: bool) -> None:
    """Show a rule's state and its metrics (records in and out, errors, latency per node)."""
    status = Client(url).call("GET", f"/rules/{_quote(rule_id)}/status")
    if as_json:
        _say(status, True)
        return
    width = max((len(k) for k in status), default=0) + 1
    for key, value in status.items():
        click.echo(f"{key + ':':<{width}} {value}")


def _rule_action(verb: str, help_: str) -> click.Command:
    @click.command(verb, help=help_)
    @click.argument("rule_id", metavar="ID")
    @_client_options
    @_server_errors
    def action(rule_id: str, url: str, as_json: bool) -> None:
        _say(Client(url).call("POST", f"/rules/{_quote(rule_id)}/{verb}"), as_json)

    return action


rule.add_command(_rule_action("start", "Start a rule."))
rule.add_command(_rule_action("stop", "Stop a rule (its sinks are flushed); it stays stopped across restarts."))
rule.add_command(_rule_action("restart", "Stop and start a rule (its metrics start again from 0)."))


@rule.command("drop")
@click.argument("rule_id", metavar="ID")
@_client_options
@_server_errors
def rule_drop(rule_id: str, url: str, as_json: bool) -> None:
    """Stop and delete a rule."""
    _say(Client(url).call("DELETE", f"/rules/{_quote(rule_id)}"), as_json)


# -------------------------------------------------------------------- query


@click.command("query")
@click.argument("sql")
@click.option("-n", "--rows", type=click.IntRange(1, 100_000), default=10, show_default=True,
              help="Stop after this many rows.")
@click.option("-s", "--seconds", type=click.FloatRange(0.1, 300), default=5.0, show_default=True,
              help="Stop after this many seconds.")
@_client_options
@_server_errors
def query(sql: str, rows: int, seconds: float, url: str, as_json: bool) -> None:
    """Run SQL (a SELECT over a stream) for N rows or S seconds and print the rows as a table.

    \b
    plutino query "SELECT count, mul2add1(temperature) AS t2 FROM demo" -n 5"""
    answer = Client(url).call("POST", "/query", {"sql": sql, "limit": rows, "timeout": seconds}, timeout=seconds + 60)
    if as_json:
        _say(answer, True)
        return
    click.echo(format_table(answer["columns"], answer["rows"]))
    click.echo(f"({len(answer['rows'])} row{'s' if len(answer['rows']) != 1 else ''} in {answer['elapsed_s']:g} s)")


def format_table(columns: Sequence[str], rows: Sequence[dict[str, Any]], max_width: int = 40) -> str:
    """A plain-text table with a header line; long cells are cut with '...'."""

    def cell(value: Any) -> str:
        if value is None:
            text = "null"
        elif isinstance(value, float):
            text = format(value, ".6g")
        elif isinstance(value, (dict, list)):
            text = json.dumps(value)
        else:
            text = str(value)
        return text if len(text) <= max_width else text[: max_width - 3] + "..."

    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


# -------------------------------------------------------------------- plugins: over REST or local


def _package_identity(location: str) -> tuple[str | None, str | None]:
    """Kind and name from a local zip's manifest (None, None when it cannot be read here)."""
    from plutino.packages.format import MANIFEST

    path = Path(urllib.parse.urlparse(location).path) if location.startswith("file://") else Path(location)
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read(MANIFEST))
        return manifest.get("kind"), manifest.get("name")
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, AttributeError):
        return None, None


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
        found_kind, found_name = _package_identity(location)
        kind, name = kind or found_kind, name or found_name
        if kind is None or name is None:
            raise click.UsageError(f"cannot read the kind and name of {location} here; give --kind and --name")
    body: dict[str, Any] = {"name": name, "file": file_url, "shellParas": list(shell_params)}
    if sha256:
        body["sha256"] = sha256
    client = Client(url, timeout=300)
    path = f"/plugins/{kind}s" + ("" if method == "POST" else f"/{_quote(name)}")
    answer = client.call(method, path, body)
    if as_json:
        _say(client.call("GET", f"/plugins/{kind}s/{_quote(name)}"), True)
    else:
        click.echo(answer)


def _rest_list(url: str, kind: str | None, as_json: bool) -> None:
    client = Client(url)
    described = [client.call("GET", f"/plugins/{k}s/{_quote(n)}") | {"kind": k}
                 for k in ([kind] if kind else KINDS) for n in client.call("GET", f"/plugins/{k}s")]
    if as_json:
        _say(described, True)
        return
    if not described:
        click.echo("no plugins installed" + (f" of kind {kind}" if kind else ""))
    for d in described:
        extra = f"  ({', '.join(d['functions'])})" if d.get("functions") else ""
        error = f"  error: {d['error']}" if d.get("error") else ""
        click.echo(f"{d['kind']:<9} {d['name']:<24} {d['version']:<10} {d.get('status', '')}{extra}{error}")


def _rest_describe(url: str, kind: str, name: str, as_json: bool) -> None:
    info = Client(url).call("GET", f"/plugins/{kind}s/{_quote(name)}")
    if as_json:
        _say(info, True)
        return
    for key, value in info.items():
        if isinstance(value, (list, dict)):
            value = json.dumps(value) if isinstance(value, dict) else ", ".join(map(str, value))
        click.echo(f"{key + ':':<15} {'' if value is None else value}")


def _rest_delete(url: str, kind: str, name: str, force: bool, as_json: bool) -> None:
    suffix = "?force=true" if force else ""
    _say(Client(url).call("DELETE", f"/plugins/{kind}s/{_quote(name)}{suffix}"), as_json)


_REST: dict[str, Callable[..., None]] = {
    "install": lambda url, location, kind, name, shell_params, sha256, as_json: _rest_install(
        "POST", url, location, kind, name, shell_params, sha256, as_json),
    "update": lambda url, location, kind, name, shell_params, sha256, as_json: _rest_install(
        "PUT", url, location, kind, name, shell_params, sha256, as_json),
    "list": _rest_list,
    "describe": _rest_describe,
    "delete": _rest_delete,
}


def dual_plugin_commands(local: Sequence[click.Command]) -> list[click.Command]:
    """``plugin install|update|list|describe|delete`` that talk to a server or work locally.

    Built from the local commands of :mod:`plutino.cli.packages` (which they call unchanged
    for local work). Where they act: ``--url`` given -> that server; ``--data-dir`` given ->
    that data directory; otherwise ``$PLUTINO_URL`` -> that server, ``$PLUTINO_HOME`` -> that
    data directory, and with neither, the server at http://127.0.0.1:9081.
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
    params.append(click.Option(["--url"], envvar="PLUTINO_URL", default=None,
                               help=f"The server to work on ($PLUTINO_URL; default {DEFAULT_URL})."))
    if not has_json:
        params.append(click.Option(["--json", "as_json"], is_flag=True,
                                   help="Print the server's answer as JSON (with --url)."))

    @_server_errors
    def callback(**kwargs: Any) -> None:
        ctx = click.get_current_context()
        url, data_dir = kwargs.pop("url"), kwargs.get("data_dir")
        url_given = ctx.get_parameter_source("url") == ParameterSource.COMMANDLINE
        dir_given = ctx.get_parameter_source("data_dir") == ParameterSource.COMMANDLINE
        if url_given and dir_given:
            raise click.UsageError("give --url (a server) or --data-dir (a data directory), not both")
        use_local = dir_given or (not url_given and url is None and data_dir is not None)
        if use_local:
            if kwargs.get("as_json") and not has_json:
                raise click.UsageError("--json needs a server (--url); on a data directory this command prints text")
            original.callback(**{k: v for k, v in kwargs.items() if k in local_names})  # type: ignore[misc]
            return
        kwargs.pop("data_dir", None)
        remote(url or DEFAULT_URL, **kwargs)

    help_text = (original.help or "") + (
        "\n\nWorks on a running server (--url, $PLUTINO_URL, default " + DEFAULT_URL + ") or, with"
        " --data-dir (or $PLUTINO_HOME), directly on a data directory.")
    return click.Command(original.name, params=params, callback=callback, help=help_text,
                         short_help=original.short_help or (original.help or "").split("\n")[0])


# -------------------------------------------------------------------- registration


def register(main: click.Group, plugin: click.Group) -> None:
    """Add these commands to the ``plutino`` group, and make the ``plugin`` package commands
    work over REST too."""
    for command in (serve, stream, rule, query):
        main.add_command(command)
    local = [plugin.commands[name] for name in _REST if name in plugin.commands]
    for command in dual_plugin_commands(local):
        plugin.add_command(command)


__all__ = ["Client", "DEFAULT_URL", "ServerError", "dual_plugin_commands", "format_table", "query", "register",
           "rule", "serve", "stream"]
