"""What a rule, a stream, a plugin, a SQL function and a conf key may be called.

A name ends up in a URL path (``/rules/{id}``, ``/streams/{name}``), a file name (a plugin's
``.so``, its ``etc/`` YAML) and a log line, so each kind of name has one rule, checked here
and nowhere else. Every rule is a whole-string match (``re.fullmatch``): a pattern anchored
with ``$`` lets a trailing newline through (``"r1\\n"``), and a name that cannot be typed
into a path cannot be deleted over REST.

The rules are eKuiper's where it has one (plugin names), and the rule id's elsewhere: a
stream is named like a rule (`` CREATE STREAM `my-stream` `` quotes a name with a '-').
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NameRule:
    """One kind of name: ``what`` it names, its pattern, and the rule in words for messages."""

    what: str
    pattern: re.Pattern[str]
    rule: str

    def ok(self, name: Any) -> bool:
        return isinstance(name, str) and self.pattern.fullmatch(name) is not None

    def message(self, name: Any, what: str | None = None) -> str:
        """What is wrong with ``name`` and the fix, for the caller's error (``what`` replaces
        the kind's own word, e.g. ``"package p.zip: plutino.json: name"``)."""
        return f"{what or self.what} {name!r} is not valid: use {self.rule}"


#: Rule ids (eKuiper's ``id``), and the names the REST API addresses rules by.
RULE_ID = NameRule("rule id", re.compile(r"[A-Za-z0-9_-]{1,128}"), "1 to 128 letters, digits, '-' or '_'")
#: Stream names: a rule id's rule (``CREATE STREAM `a-b` ...`` quotes a name with a '-').
STREAM_NAME = NameRule("stream name", RULE_ID.pattern,
                       "1 to 128 letters, digits, '-' or '_' (quote a name with '-' in backticks)")
#: Plugin names: eKuiper's rule; at most 63 bytes, the size of the ABI tag's name field.
PLUGIN_NAME = NameRule("plugin name", re.compile(r"[A-Za-z0-9_-]{1,63}"), "1 to 63 letters, digits, '-' or '_'")
#: SQL function names (a plugin's functions): a SQL identifier.
FUNCTION_NAME = NameRule("function name", re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}"),
                         "1 to 128 letters, digits or '_', not starting with a digit")
#: Conf key names (``/metadata/sources/{type}/confKeys/{key}``, the sections of a plugin's YAML).
CONF_KEY = NameRule("conf key", RULE_ID.pattern, "1 to 128 letters, digits, '-' or '_'")


__all__ = ["CONF_KEY", "FUNCTION_NAME", "NameRule", "PLUGIN_NAME", "RULE_ID", "STREAM_NAME"]
