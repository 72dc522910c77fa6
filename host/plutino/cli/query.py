"""``plutino query "SELECT ..."``: a query run on a running server, its rows printed as a table."""

from __future__ import annotations

import click

from plutino.api.client import Client
from plutino.cli.remote import client_options, format_table, say, server_errors


@click.command("query")
@click.argument("sql")
@click.option("-n", "--rows", type=click.IntRange(1, 100_000), default=10, show_default=True,
              help="Stop after this many rows.")
@click.option("-s", "--seconds", type=click.FloatRange(0.1, 300), default=5.0, show_default=True,
              help="Stop after this many seconds.")
@client_options
@server_errors
def query(sql: str, rows: int, seconds: float, url: str, as_json: bool) -> None:
    """Run SQL (a SELECT over a stream) for N rows or S seconds and print the rows as a table.

    \b
    plutino query "SELECT count, mul2add1(temperature) AS t2 FROM demo" -n 5"""
    answer = Client(url).call("POST", "/query", {"sql": sql, "limit": rows, "timeout": seconds}, timeout=seconds + 60)
    if as_json:
        say(answer, True)
        return
    click.echo(format_table(answer["columns"], answer["rows"]))
    click.echo(f"({len(answer['rows'])} row{'s' if len(answer['rows']) != 1 else ''} in {answer['elapsed_s']:g} s)")
    for error in answer.get("errors") or []:
        click.echo(f"error: {error}", err=True)


__all__ = ["query"]
