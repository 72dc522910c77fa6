"""``plutino rule create|list|describe|status|start|stop|restart|update|drop``: rules on a running server.

A rule is given as its JSON (``{"id", "sql", "actions", "options"}``), as text or with
``-f FILE``; the id may also be given before it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from plutino.api.client import Client
from plutino.cli.remote import client_options, format_table, quote, say, server_errors


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
@client_options
@server_errors
def rule_create(rule_id: str | None, definition: str | None, file: Path | None, url: str, as_json: bool) -> None:
    """Create (and start) a rule from its JSON: {"id", "sql", "actions", "options"}.

    \b
    plutino rule create r1 '{"sql": "SELECT * FROM demo", "actions": [{"log": {}}]}'
    plutino rule create -f rule.json"""
    if rule_id is not None and rule_id.lstrip().startswith("{") and definition is None:
        rule_id, definition = None, rule_id  # `plutino rule create '{...}'`
    say(Client(url).call("POST", "/rules", _rule_body(rule_id, definition, file)), as_json)


@rule.command("update")
@click.argument("rule_id", metavar="ID")
@click.argument("definition", metavar="[JSON]", required=False)
@_rule_file
@client_options
@server_errors
def rule_update(rule_id: str, definition: str | None, file: Path | None, url: str, as_json: bool) -> None:
    """Replace rule ID by a new definition; a running rule restarts with it, a stopped one stays
    stopped (start it with `plutino rule start ID`)."""
    say(Client(url).call("PUT", f"/rules/{quote(rule_id)}", _rule_body(rule_id, definition, file)), as_json)


@rule.command("list")
@client_options
@server_errors
def rule_list(url: str, as_json: bool) -> None:
    """List the rules: their status (running, stopped) and message (why a rule stopped)."""
    rules = Client(url).call("GET", "/rules")
    if as_json:
        say(rules, True)
    elif not rules:
        click.echo("no rules")
    else:
        click.echo(format_table(["id", "status", "message"], rules, max_width=60))


@rule.command("describe")
@click.argument("rule_id", metavar="ID")
@client_options
@server_errors
def rule_describe(rule_id: str, url: str, as_json: bool) -> None:
    """Show a rule as it was submitted."""
    say(Client(url).call("GET", f"/rules/{quote(rule_id)}"), True)


@rule.command("status")
@click.argument("rule_id", metavar="ID")
@client_options
@server_errors
def rule_status(rule_id: str, url: str, as_json: bool) -> None:
    """Show a rule's status (running, stopped), its message (why it stopped) and its metrics
    (records in and out, errors, latency per node)."""
    status = Client(url).call("GET", f"/rules/{quote(rule_id)}/status")
    if as_json:
        say(status, True)
        return
    width = max((len(k) for k in status), default=0) + 1
    for key, value in status.items():
        click.echo(f"{key + ':':<{width}} {value}")


def _rule_action(verb: str, help_: str) -> click.Command:
    @click.command(verb, help=help_)
    @click.argument("rule_id", metavar="ID")
    @client_options
    @server_errors
    def action(rule_id: str, url: str, as_json: bool) -> None:
        say(Client(url).call("POST", f"/rules/{quote(rule_id)}/{verb}"), as_json)

    return action


rule.add_command(_rule_action("start", "Start a rule."))
rule.add_command(_rule_action("stop", "Stop a rule (its sinks are flushed); it stays stopped across restarts."))
rule.add_command(_rule_action("restart", "Stop and start a rule (its metrics start again from 0)."))


@rule.command("drop")
@click.argument("rule_id", metavar="ID")
@client_options
@server_errors
def rule_drop(rule_id: str, url: str, as_json: bool) -> None:
    """Stop and delete a rule."""
    say(Client(url).call("DELETE", f"/rules/{quote(rule_id)}"), as_json)


__all__ = ["rule"]
