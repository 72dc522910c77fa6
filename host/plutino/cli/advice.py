"""The host's advice said in the CLI's words: ``use PUT /plugins/functions/myfn`` becomes
``use `plutino plugin update myfn.zip```.

The server's messages advise the REST calls its clients make, and stay so for REST clients.
The CLI prints every error through :func:`cli_advice`, which rewrites the REST calls that the
host's messages name (:data:`_RULES`, most specific first) as the commands that do the same.
``params`` are the command's own parameters, so advice can repeat what the user typed (the
package's LOCATION); a message that names no REST call comes back as it is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

_NAME = r"[^\s/;,()?]+"
_KINDS = r"(?P<kinds>sources|sinks|functions)"

_Rewrite = Callable[["re.Match[str]", Mapping[str, Any]], str]


def _kind(match: re.Match[str]) -> str:
    return match["kinds"][:-1]


def _location(params: Mapping[str, Any]) -> str:
    return str(params.get("location") or "PACKAGE.zip")


def _replace_plugin(match: re.Match[str], params: Mapping[str, Any]) -> str:
    return (f"use `plutino plugin update {_location(params)}`, or delete it first"
            f" (`plutino plugin delete {_kind(match)} {match['name']}`)")


_RULES: list[tuple[re.Pattern[str], _Rewrite]] = [(re.compile(p), r) for p, r in [
    # plugins
    (rf"use PUT /plugins/{_KINDS}/(?P<name>{_NAME}), or DELETE it first", _replace_plugin),
    (rf"use update \(PUT /plugins/{_KINDS}/(?P<name>{_NAME}), plutino plugin update\), or delete it first",
     _replace_plugin),
    (rf"\(POST /plugins/{_KINDS}, plutino plugin install\)",
     lambda m, p: f"(`plutino plugin install {_location(p)}`)"),
    (rf"install it with POST /plugins/{_KINDS}", lambda m, p: "install it with `plutino plugin install PACKAGE.zip`"),
    (rf"see GET /plugins/{_KINDS}/(?P<name>{_NAME})",
     lambda m, p: f"see `plutino plugin describe {_kind(m)} {m['name']}`"),
    (r"see GET /plugins/udfs", lambda m, p: "see `plutino plugin list function`"),
    (r"\(\?force=true, --force\)", lambda m, p: "(--force)"),
    (r"with \?force=true", lambda m, p: "with --force"),
    (rf"\(DELETE /plugins/trusted_keys/(?P<name>{_NAME})\)", lambda m, p: f"(`plutino plugin untrust {m['name']}`)"),
    (r" \(or POST /plugins/trusted_keys\)", lambda m, p: ""),
    # streams
    (rf"DELETE /streams/(?P<name>{_NAME})\?force=true", lambda m, p: f"`plutino stream drop {m['name']} --force`"),
    (r"go to POST /streams", lambda m, p: "go to `plutino stream create`"),
    (rf"PUT /streams/(?P<name>{_NAME}), or name", lambda m, p: f"`plutino stream update {m['name']} SQL`, or name"),
    # rules
    (rf"delete it first \(DELETE /rules/(?P<id>{_NAME})\), update it with PUT",
     lambda m, p: f"delete it first (`plutino rule drop {m['id']}`), update it (`plutino rule update {m['id']}`)"),
    (rf"replace it with PUT /rules/(?P<id>{_NAME}) or delete it with DELETE /rules/(?P=id)",
     lambda m, p: f"replace it with `plutino rule update {m['id']}` or delete it with `plutino rule drop {m['id']}`"),
    (rf"with POST /rules/(?P<id>{_NAME})/start", lambda m, p: f"with `plutino rule start {m['id']}`"),
    (r"\(PUT /rules/\{id\}\)", lambda m, p: "(`plutino rule update`)"),
    (r"rules of POST /query", lambda m, p: "rules of `plutino query`"),
]]


def _apply(rewrite: _Rewrite, params: Mapping[str, Any], match: re.Match[str]) -> str:
    return rewrite(match, params)


def cli_advice(message: str, params: Mapping[str, Any] | None = None) -> str:
    """``message`` with the REST calls it advises said as CLI commands."""
    for pattern, rewrite in _RULES:
        message = pattern.sub(functools.partial(_apply, rewrite, params or {}), message)
    return message


__all__ = ["cli_advice"]
