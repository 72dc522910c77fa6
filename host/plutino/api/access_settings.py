"""The settings of the API's front door (:class:`plutino.api.access.AccessGuard`), and where
they come from: the defaults, overlaid by the ``api:`` section of
``$PLUTINO_HOME/etc/plutino.yaml``, overlaid by the environment. Each is explained in
docs/security.md; a wrong one stops the server at start with a message naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plutino.config import DataDir
from plutino.errors import PlutinoError

from .origin import parse_allowed_hosts, parse_allowed_origins

#: setting -> (environment variable, what it is)
SETTINGS = {
    "token": ("PLUTINO_TOKEN", "the bearer token every request needs (none: no token asked)"),
    "max_body_bytes": ("PLUTINO_MAX_BODY_BYTES", "the largest request body, in bytes (default 1048576)"),
    "allowed_origins": ("PLUTINO_ALLOWED_ORIGINS", "web origins whose pages may use the API (default none)"),
    "allowed_hosts": ("PLUTINO_ALLOWED_HOSTS", "host names besides the server's own (default none)"),
    "public_reads": ("PLUTINO_PUBLIC_READS", "with a token, let GETs through without it (default false)"),
}


@dataclass(frozen=True)
class AccessSettings:
    """The API's guards. ``token`` None: no token needed (the default, on loopback).
    ``bind_host``: the name or address given to ``--host``, which the Host header may name."""

    token: str | None = None
    max_body_bytes: int = 1024 * 1024
    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    public_reads: bool = False
    bind_host: str | None = None


def load_access_settings(data: DataDir | None, environ: Mapping[str, str] | None = None) -> AccessSettings:
    """Defaults, overlaid by ``api:`` in ``etc/plutino.yaml``, overlaid by the environment."""
    values: dict[str, Any] = {}
    path = data.settings_file if data is not None else None
    if path is not None and path.is_file():
        import yaml

        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise PlutinoError(f"{path} is not valid YAML ({exc}); fix or remove the file") from exc
        section = doc.get("api", {}) if isinstance(doc, dict) else {}
        if not isinstance(section, dict):
            raise PlutinoError(f"{path}: 'api' must be a mapping of settings ({', '.join(SETTINGS)}),"
                               f" got {section!r}")
        unknown = sorted(str(k) for k in set(section) - set(SETTINGS))
        if unknown:
            raise PlutinoError(f"{path}: unknown setting api.{unknown[0]}; known: "
                               + ", ".join(f"api.{k}" for k in SETTINGS))
        values = {k: (v, f"{path}: api.{k}") for k, v in section.items()}
    env = os.environ if environ is None else environ
    for key, (variable, _) in SETTINGS.items():
        if variable in env:
            values[key] = (env[variable], variable)
    return _settings(values)


def _settings(values: dict[str, tuple[Any, str]]) -> AccessSettings:
    out: dict[str, Any] = {}
    if "token" in values:
        token, origin = values["token"]
        if token is not None and not isinstance(token, str):
            raise PlutinoError(f"{origin}: the API token must be a string, got {type(token).__name__};"
                               " quote it in the YAML")
        out["token"] = token or None
    if "max_body_bytes" in values:
        out["max_body_bytes"] = _positive(*values["max_body_bytes"])
    if "allowed_origins" in values:
        out["allowed_origins"] = parse_allowed_origins(_names(*values["allowed_origins"]), values["allowed_origins"][1])
    if "allowed_hosts" in values:
        out["allowed_hosts"] = parse_allowed_hosts(_names(*values["allowed_hosts"]), values["allowed_hosts"][1])
    if "public_reads" in values:
        out["public_reads"] = _flag(*values["public_reads"])
    return AccessSettings(**out)


def _positive(value: Any, origin: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1 or isinstance(value, bool):
        raise PlutinoError(f"{origin} = {value!r} is not a positive number of bytes (default 1048576)")
    return number


def _names(value: Any, origin: str) -> list[Any]:
    """A list from YAML, or a comma-separated text (the environment's form)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return value
    raise PlutinoError(f"{origin} must be a list of names, or one text of names separated by commas; got {value!r}")


def _flag(value: Any, origin: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise PlutinoError(f"{origin} = {value!r} is not true or false")


__all__ = ["AccessSettings", "SETTINGS", "load_access_settings"]
