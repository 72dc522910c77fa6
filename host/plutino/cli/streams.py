"""``plutino stream create|list|describe|update|drop``: streams on a running server."""

from __future__ import annotations

import click

from plutino.api.client import Client
from plutino.cli.remote import client_options, quote, say, server_errors


@click.group("stream")
def stream() -> None:
    """Create, list, describe and drop streams on a running server."""


@stream.command("create")
@click.argument("sql")
@client_options
@server_errors
def stream_create(sql: str, url: str, as_json: bool) -> None:
    """Create a stream: SQL is a CREATE STREAM statement."""
    say(Client(url).call("POST", "/streams", {"sql": sql}), as_json)


@stream.command("update")
@click.argument("name")
@click.argument("sql")
@client_options
@server_errors
def stream_update(name: str, sql: str, url: str, as_json: bool) -> None:
    """Replace stream NAME by the CREATE STREAM statement SQL."""
    say(Client(url).call("PUT", f"/streams/{quote(name)}", {"sql": sql}), as_json)


@stream.command("list")
@client_options
@server_errors
def stream_list(url: str, as_json: bool) -> None:
    """List the streams."""
    names = Client(url).call("GET", "/streams")
    if as_json:
        say(names, True)
    else:
        click.echo("\n".join(names) if names else "no streams")


@stream.command("describe")
@click.argument("name")
@client_options
@server_errors
def stream_describe(name: str, url: str, as_json: bool) -> None:
    """Show a stream's fields, options and statement."""
    info = Client(url).call("GET", f"/streams/{quote(name)}")
    if as_json:
        say(info, True)
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
@click.option("--force", is_flag=True, help="Drop the definition although rules read it (they stay as they are).")
@client_options
@server_errors
def stream_drop(name: str, force: bool, url: str, as_json: bool) -> None:
    """Drop a stream (refused while rules read it, unless --force)."""
    say(Client(url).call("DELETE", f"/streams/{quote(name)}" + ("?force=true" if force else "")), as_json)


__all__ = ["stream"]
