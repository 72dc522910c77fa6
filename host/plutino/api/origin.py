"""Which web pages and which host names may talk to the API: the browser-facing checks.

A browser is the one client an attacker can drive without being on the machine: any page the
user opens can send requests to ``http://127.0.0.1:9081``. Two checks keep such pages out, as
Jupyter Server and Home Assistant do:

- **Host** (DNS rebinding). A page at ``http://attacker.example`` whose name is made to resolve
  to 127.0.0.1 reaches the server, but its requests carry ``Host: attacker.example``. The
  ``Host`` header must name the server: ``localhost``, ``127.0.0.1`` or ``[::1]``, the address
  the connection came in on, or the name it was told to listen on (``--host``), each with the
  port it listens on; or a name in ``api.allowed_hosts`` (``name`` for any port, ``name:port``
  for one, ``*`` for any name). A request without a ``Host`` header (HTTP/1.0) comes from no
  browser and passes.
- **Origin** (cross-site requests). Browsers say which page sent a request in ``Origin``. A
  request whose ``Origin`` is neither the server itself (its own pages, such as ``/docs``) nor
  in ``api.allowed_origins`` (``http://ui.example:3000``; ``*`` for any) is refused. Programs
  (curl, the CLI, eKuiper's tools) send no ``Origin`` and pass.

The functions here only decide; :class:`plutino.api.access.AccessGuard` answers 403.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from plutino.errors import PlutinoError

#: Names that always mean this machine, whatever a DNS server answers.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def split_host(value: str, scheme: str = "http") -> tuple[str, int | None] | None:
    """``Host``-header syntax -> (name, port): ``"[::1]:9081"`` -> ``("::1", 9081)``; a missing
    port is the scheme's default; None when the value is not a host at all."""
    value = value.strip().lower()
    if not value or any(c in value for c in "/@?# \\"):
        return None
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else ""
    elif value.count(":") > 1:  # a bare IPv6 address
        name, port_text = value, ""
    else:
        name, _, port_text = value.partition(":")
    name = name.rstrip(".")
    if not name:
        return None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            return None
        return name, int(port_text)
    return name, _DEFAULT_PORTS.get(scheme)


def _canonical(name: str) -> str:
    """An IP address in one spelling (``::0001`` -> ``::1``); a name as it is."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def parse_allowed_hosts(values: Iterable[Any], origin: str) -> tuple[str, ...]:
    """``api.allowed_hosts`` checked: each ``name``, ``name:port``, ``[v6]:port`` or ``*``."""
    out = []
    for value in values:
        if value == "*":
            out.append("*")
            continue
        text = str(value).strip().lower()
        parsed = split_host(text) if isinstance(value, str) else None
        if parsed is None:
            raise PlutinoError(f"{origin}: {value!r} is not a host name; write a name the server is reached by,"
                               " e.g. plutino.example or plutino.example:9081 (or * for any name)")
        port_given = "]:" in text if text.startswith("[") else text.count(":") == 1
        out.append(f"{_canonical(parsed[0])}:{parsed[1]}" if port_given else _canonical(parsed[0]))
    return tuple(out)


def parse_allowed_origins(values: Iterable[Any], origin: str) -> tuple[str, ...]:
    """``api.allowed_origins`` checked and written the way browsers send them."""
    out = []
    for value in values:
        if value == "*":
            out.append("*")
            continue
        normal = normal_origin(value) if isinstance(value, str) else None
        if normal is None:
            raise PlutinoError(f"{origin}: {value!r} is not a web origin; write scheme, host and port as a browser"
                               " sends them in the Origin header, e.g. http://ui.example:3000 (no path)")
        out.append(normal)
    return tuple(out)


def normal_origin(value: str) -> str | None:
    """``scheme://host[:port]`` with the default port left out, lower case; None if not one."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    host = split_host(parts.netloc, scheme)
    if host is None or "@" in parts.netloc:
        return None
    name, port = host
    shown = f"[{name}]" if ":" in name else name
    return f"{scheme}://{shown}" if port == _DEFAULT_PORTS[scheme] else f"{scheme}://{shown}:{port}"


def host_refusal(value: str, scope: dict[str, Any], allowed: tuple[str, ...], bind_host: str | None) -> str | None:
    """Why a ``Host`` header is refused, or None when it names this server."""
    scheme = scope.get("scheme", "http")
    parsed = split_host(value, scheme)
    server = scope.get("server") or (None, None)
    port = server[1]
    if parsed is not None:
        name, given_port = _canonical(parsed[0]), parsed[1]
        if "*" in allowed or name in allowed or f"{name}:{given_port}" in allowed:
            return None
        ours = set(LOOPBACK_NAMES)
        ours.update(_canonical(str(h).lower()) for h in (server[0], bind_host) if h)
        if name in ours and (port is None or given_port == port):
            return None
    known = ["localhost", "127.0.0.1", "::1"]
    known += [n for n in (_canonical(str(h).lower()) for h in (server[0], bind_host) if h) if n not in known]
    names = ", ".join(f"[{n}]" if ":" in n else n for n in known)
    where = f" on port {port}" if port else ""
    return (f"the Host header {value!r} does not name this server, which answers to {names}{where}; a request"
            " for another name is how a web page reaches a local server by DNS rebinding. If you reach the server"
            " by that name (a DNS name, a proxy), add it to api.allowed_hosts in etc/plutino.yaml"
            " (or PLUTINO_ALLOWED_HOSTS)")


def origin_refusal(value: str, scope: dict[str, Any], host: str | None, allowed: tuple[str, ...]) -> str | None:
    """Why a request sent by the web page at ``value`` (its ``Origin``) is refused, or None."""
    normal = normal_origin(value)
    if "*" in allowed or (normal is not None and normal in allowed):
        return None
    if normal is not None and host is not None:
        own = normal_origin(f"{scope.get('scheme', 'http')}://{host}")
        if own is not None and own == normal:
            return None
    return (f"requests from the web page at {value!r} are refused: that origin may not use this API (a page"
            " from any site could otherwise change rules or install plugins). To let a web UI served there"
            " use it, add its origin to api.allowed_origins in etc/plutino.yaml (or PLUTINO_ALLOWED_ORIGINS)")


__all__ = ["LOOPBACK_NAMES", "host_refusal", "normal_origin", "origin_refusal", "parse_allowed_hosts",
           "parse_allowed_origins", "split_host"]
