"""What every command that talks to a running server shares.

Each takes ``--url`` (which server: :mod:`plutino.cli.server_address`) and ``--json`` (the
server's answer as JSON, for scripts): :func:`client_options`. A refusal or an unreachable
server is one line on stderr and exit code 1, its advice in the CLI's words
(:mod:`plutino.cli.advice`): :func:`server_errors`. Answers are printed by
:func:`say` (text as it is, JSON pretty-printed) or as a table (:func:`format_table`).
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any

import click

from plutino.api.client import ServerError
from plutino.cli.advice import cli_advice
from plutino.cli.server_address import DEFAULT_URL, url_option
from plutino.errors import PlutinoError
from plutino.secrets import mask_text


def client_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--url`` and ``--json`` to a client command."""
    command = click.option("--json", "as_json", is_flag=True, help="Print the server's answer as JSON.")(command)
    return url_option()(command)


def server_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """A refusal, an unreachable server or a local check's error: one line on stderr, exit code 1."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ServerError, PlutinoError) as exc:
            fail(str(exc))

    return wrapper


def fail(message: str) -> None:
    """Print ``message`` as the CLI's error (its advice in CLI words, no secrets) and exit with 1."""
    ctx = click.get_current_context(silent=True)
    click.echo(f"error: {mask_text(cli_advice(message, ctx.params if ctx else None))}", err=True)
    sys.exit(1)


def say(answer: Any, as_json: bool) -> None:
    """A text answer as it is (``--json``: as ``{"message": ...}``); JSON pretty-printed."""
    if isinstance(answer, str):
        click.echo(json.dumps({"message": answer}) if as_json else answer)
    else:
        click.echo(json.dumps(answer, indent=2))


def quote(part: str) -> str:
    """``part`` quoted for one segment of a URL path."""
    return urllib.parse.quote(part, safe="")


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


__all__ = ["DEFAULT_URL", "client_options", "fail", "format_table", "quote", "say", "server_errors"]
