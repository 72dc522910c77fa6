"""Secrets shown as ``******``: in every answer of the API, in the CLI's output and in the log.

What counts as a secret, decided here and only here:

- **a property whose name says so** (:func:`is_secret`): it contains ``password``, ``passwd``,
  ``passphrase``, ``secret``, ``token``, ``credential``, ``authorization``, ``cookie``,
  ``apikey``/``api_key``, ``accesskey``, ``privatekey`` or ``signingkey`` (case and ``_``/``-``
  ignored), or is ``pwd``, unless it ends in ``url``, ``path``, ``file`` or the like (a path to a
  key is not the key). A bare ``key`` is not a secret: eKuiper's stream option ``KEY`` and many
  sinks' ``key`` name a field. Texts and numbers are masked, flags are not (``"useToken": true``
  stays), and ``None`` and ``""`` stay as they are, so a client can tell "not set" from "set";
- **credentials inside a text** (:func:`mask_text`): the password of a URL's ``user:pass@``,
  the value of a secret query or form parameter (``?access_token=...``), of a secret JSON field
  written inside a string, and the credentials after ``Bearer``/``Basic``.

An update that sends a masked value back keeps the stored one (:func:`restore_masked`, as
eKuiper does); a ``******`` left where nothing is stored to keep is found by
:func:`masks_left`, so the caller can refuse it instead of storing six asterisks as a password.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

MASK = "******"

_WORDS = ("password", "passwd", "passphrase", "secret", "token", "credential", "authorization", "cookie",
          "apikey", "accesskey", "privatekey", "signingkey")
_EXACT = frozenset({"pwd"})
#: Names that end so hold where or what a secret is, not the secret: ``privateKeyPath``, ``tokenUrl``.
_NOT_SECRET_ENDINGS = ("url", "uri", "path", "file", "dir", "type", "field", "name", "expire", "expires",
                       "expiry", "ttl", "length", "size", "count", "format", "header")

_NAME = (r"[\w.-]*?(?:password|passwd|passphrase|secret|token|credential|api[_-]?key|access[_-]?key"
         r"|private[_-]?key)[\w.-]*")
_TEXT_PATTERNS = [
    # scheme://user:password@host
    re.compile(r"(?P<pre>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@?#]*:)(?P<val>[^\s/@?#]+)(?=@)"),
    # ?access_token=...&  password=...  (query strings, form bodies, log lines)
    re.compile(rf"(?P<pre>(?<![\w.-]){_NAME}=)(?P<val>[^&\s#\"',;]+)", re.IGNORECASE),
    # "client_secret": "..." written inside a string (a JSON body in a property)
    re.compile(rf"(?P<pre>\"{_NAME}\"\s*:\s*\")(?P<val>(?:[^\"\\]|\\.)+)(?=\")", re.IGNORECASE),
    # Authorization: Bearer ... / Basic ...
    re.compile(r"(?P<pre>\b(?:bearer|basic)\s+)(?P<val>[A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE),
]


def is_secret(name: str) -> bool:
    """Whether a property called ``name`` holds a secret (see the module's docstring)."""
    low = name.lower().replace("_", "").replace("-", "")
    if low in _EXACT:
        return True
    if low.endswith(_NOT_SECRET_ENDINGS):
        return False
    return any(word in low for word in _WORDS)


def mask_text(text: str) -> str:
    """``text`` with the credentials written inside it as ``******`` (URLs, parameters, headers)."""
    if not text:
        return text
    for pattern in _TEXT_PATTERNS:
        text = pattern.sub(lambda m: m.group("pre") + MASK, text)
    return text


def masked(value: Any) -> Any:
    """A copy of ``value`` (JSON-like: mappings, lists, scalars) with every secret as ``******``."""
    if isinstance(value, Mapping):
        return {k: (MASK if _maskable(v) and isinstance(k, str) and is_secret(k) else masked(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def _maskable(value: Any) -> bool:
    """A value a secret property can hold: a non-empty text or a number (YAML reads ``password:
    1234`` as one); not a flag, not ``None``, not a mapping or list (whose inside is looked at)."""
    return (isinstance(value, str) and value != "") or (isinstance(value, (int, float)) and not isinstance(value, bool))


def masked_texts(value: Any) -> Any:
    """A copy of ``value`` with :func:`mask_text` applied to every text, and no property masked by
    its name: for answers whose keys are names chosen by users (rule ids, metrics), not settings."""
    if isinstance(value, Mapping):
        return {k: masked_texts(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked_texts(v) for v in value]
    return mask_text(value) if isinstance(value, str) else value


_MISSING = object()


def restore_masked(new: Any, old: Any) -> Any:
    """``new`` with each masked value that ``old`` (the stored version) holds put back: a secret
    property sent as ``******``, and a text sent as :func:`masked` shows the stored one (a URL
    whose password reads ``******``). Mappings match by key (case-insensitively when the exact
    key is not there), lists by position."""
    if isinstance(new, str):
        if MASK in new and isinstance(old, str) and new != old and mask_text(old) == new:
            return old
        return new
    if isinstance(new, Mapping) and isinstance(old, Mapping):
        folded = {str(k).lower(): v for k, v in old.items()}
        out = {}
        for key, value in new.items():
            before = old[key] if key in old else folded.get(str(key).lower(), _MISSING)
            if before is _MISSING:
                out[key] = value
            elif value == MASK and isinstance(key, str) and is_secret(key):
                out[key] = before
            else:
                out[key] = restore_masked(value, before)
        return out
    if isinstance(new, list) and isinstance(old, list):
        return [restore_masked(v, old[i]) if i < len(old) else v for i, v in enumerate(new)]
    return new


def masks_left(value: Any, where: str = "") -> list[str]:
    """Where ``value`` still holds a masked secret (``actions[0].mqtt.password``): values that
    :func:`restore_masked` had nothing to restore from."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            place = f"{where}.{key}" if where else str(key)
            if item == MASK and isinstance(key, str) and is_secret(key):
                found.append(place)
            else:
                found += masks_left(item, place)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += masks_left(item, f"{where}[{i}]")
    elif isinstance(value, str) and MASK in value and _masked_in_place(value):
        found.append(where or "the value")
    return found


def _masked_in_place(text: str) -> bool:
    return any(m.group("val") == MASK for pattern in _TEXT_PATTERNS for m in pattern.finditer(text))


class SecretFilter(logging.Filter):
    """A logging filter that masks the credentials in each record's message (see :func:`mask_text`).

    Attached to the handlers, so it sees the records of every logger, workers' included."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = mask_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


__all__ = ["MASK", "SecretFilter", "is_secret", "mask_text", "masked", "masked_texts", "masks_left", "restore_masked"]
