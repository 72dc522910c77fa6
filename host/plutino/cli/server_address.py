"""Which server a client command talks to: one rule for every command.

The first of these that is given wins:

1. ``--url`` after the command (``plutino rule list --url 9181``);
2. ``--url`` before it, on the ``plutino`` group (``plutino --url 9181 rule list``);
3. ``$PLUTINO_URL``;
4. ``$PLUTINO_PORT``, the port ``plutino serve`` reads, on 127.0.0.1;
5. http://127.0.0.1:9081.

Each is written as a port (``9181``), ``host:port`` (``localhost:9181``) or a URL
(``http://127.0.0.1:9181``); a value that is none of them is a usage mistake (exit code 2)
whose message names the accepted forms. The ``plugin`` commands that also work on a data
directory ask :func:`asked_url` whether a server was named at all (1 to 3).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

from plutino.api.client import URL_FORMS, server_url
from plutino.secrets import mask_text

DEFAULT_URL = "http://127.0.0.1:9081"
_GROUP_URL = "plutino.group_url"  # where the group's --url waits for the command (ctx.meta)

#: Where a named server came from, as :func:`asked_url` says.
COMMAND, GROUP, ENVIRONMENT = "command", "group", "environment"


def checked_url(value: str, origin: str) -> str:
    """``value`` as a base URL, or a usage error naming ``origin`` (``--url``, ``PLUTINO_URL``)."""
    try:
        return server_url(value)
    except ValueError as exc:
        raise click.UsageError(f"{origin} {mask_text(value)!r} does not name a Plutino server: {exc};"
                               f" give {URL_FORMS}") from None


def remember_group_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """The ``plutino`` group's ``--url`` callback: checked now, used by the command that follows."""
    if value is not None:
        ctx.meta[_GROUP_URL] = checked_url(value, "--url")
    return value


def asked_url(ctx: click.Context, value: str | None) -> tuple[str | None, str | None]:
    """The server named by the command's ``--url`` (``value``), the group's or ``$PLUTINO_URL``,
    and where it came from (:data:`COMMAND`, :data:`GROUP`, :data:`ENVIRONMENT`); ``(None, None)``
    when none names one."""
    if value is not None:
        return checked_url(value, "--url"), COMMAND
    if ctx.meta.get(_GROUP_URL):
        return ctx.meta[_GROUP_URL], GROUP
    env = os.environ.get("PLUTINO_URL")
    if env:
        return checked_url(env, "PLUTINO_URL"), ENVIRONMENT
    return None, None


def fallback_url() -> str:
    """The server when none is named: 127.0.0.1 on ``$PLUTINO_PORT``, else :data:`DEFAULT_URL`."""
    port = os.environ.get("PLUTINO_PORT")
    if not port:
        return DEFAULT_URL
    if not port.strip().isdigit() or not 0 < int(port) < 65536:
        raise click.UsageError(f"PLUTINO_PORT {port!r} is not a port (1 to 65535); set it to the server's port,"
                               f" or name the server with --url (or PLUTINO_URL): {URL_FORMS}")
    return f"http://127.0.0.1:{int(port)}"


def resolve_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    """A client command's ``--url`` callback: the server it talks to, by the rule above."""
    url, _ = asked_url(ctx, value)
    return url or fallback_url()


URL_HELP = ("The server: a port (9181), host:port or URL. Default: $PLUTINO_URL, else 127.0.0.1:$PLUTINO_PORT,"
            f" else {DEFAULT_URL}.")


def url_option(callback: Callable[..., Any] = resolve_url) -> Callable[..., Any]:
    """The ``--url`` option of a client command (read by ``callback``)."""
    return click.option("--url", default=None, metavar="URL", callback=callback, help=URL_HELP)


__all__ = ["COMMAND", "DEFAULT_URL", "ENVIRONMENT", "GROUP", "URL_HELP", "asked_url", "checked_url",
           "fallback_url", "remember_group_url", "resolve_url", "url_option"]
