"""Reading a built-in source's or sink's properties, with messages a user can act on.

Properties reach a plugin from three places (the plugin's yaml, the stream's WITH clause, a
rule action's JSON), so the same setting may arrive as ``1000`` or as ``"1000"``: numbers and
booleans written as strings are accepted. Names match case-insensitively, as in eKuiper
(its documented ``clientId`` is the mqtt sink's ``clientid``): :func:`canonical` re-keys a
config to the spellings a plugin reads. An unknown property is refused with the list of
known ones (and the closest name), because a misspelt ``qos`` silently ignored costs a user
an afternoon.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable, Mapping

#: Keys the engine may add to every source's config (eKuiper's reserved stream properties);
#: a source that has no use for one ignores it instead of refusing it.
RESERVED_SOURCE_KEYS = frozenset(
    {
        "format",
        "datasource",
        "interval",
        "bufferLength",
        "delimiter",
        "schemaId",
        "key",
        "shared",
        "timestamp",
        "timestampFormat",
        "strictValidation",
        "confKey",
    }
)


def canonical(config: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """``config`` with every key that matches one of ``names`` case-insensitively renamed to
    that spelling (other keys as written). Where two keys meet (a yaml's ``clientid`` and an
    action's ``clientId``), the later one wins: overlays come after what they override."""
    spelling = {n.lower(): n for n in names}
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = spelling.get(key.lower(), key) if isinstance(key, str) else key
        out.pop(name, None)  # keep the later key's place as well as its value
        out[name] = value
    return out


#: The largest whole number a property takes unless its getter says otherwise (a 32-bit int:
#: 24 days in ms); past it a timeout or interval overflowed the clocks it was given to.
MAX_WHOLE = 2**31 - 1


class Options:
    """Typed getters over one plugin's config; every error names ``what`` and the key.

    Keys are matched to ``known`` (and ``ignore``) case-insensitively; the getters take the
    known spelling."""

    def __init__(
        self, what: str, config: Mapping[str, Any], known: Iterable[str], example: str, ignore: Iterable[str] = ()
    ) -> None:
        self.what = what
        known = set(known)
        ignore = set(ignore)
        self.config = canonical(config, known | ignore)
        self.example = example
        unknown = sorted(k for k in self.config if k not in known and k not in ignore)
        if unknown:
            key = unknown[0]
            pool = {k.lower(): k for k in known}
            close = difflib.get_close_matches(key.lower(), sorted(pool), n=1)
            hint = f"did you mean '{pool[close[0]]}'? " if close else ""
            raise ValueError(
                f"{what}: unknown property '{key}'; {hint}its properties are {', '.join(sorted(known))}, e.g. {example}"
            )

    def has(self, key: str) -> bool:
        return self.config.get(key) is not None

    def error(self, key: str, expected: str) -> ValueError:
        return ValueError(
            f"{self.what}: property '{key}' must be {expected}, got {self.config.get(key)!r}; e.g. {self.example}"
        )

    def text(
        self, key: str, default: str | None = None, choices: Iterable[str] | None = None, required: bool = False
    ) -> str | None:
        value = self.config.get(key)
        if value is None or value == "":
            if required:
                raise ValueError(f"{self.what}: property '{key}' is missing; e.g. {self.example}")
            return default
        if not isinstance(value, str):
            raise self.error(key, "a string")
        if choices is not None:
            options = list(choices)
            if value.lower() not in options:
                raise self.error(key, f"one of {', '.join(repr(c) for c in options)}")
            return value.lower()
        return value

    def integer(self, key: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self.config.get(key)
        if value is None or value == "":
            return default
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, "a whole number")
        if value > MAX_WHOLE and maximum is None:
            maximum = MAX_WHOLE
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = (
                f"between {minimum} and {maximum}"
                if minimum is not None and maximum is not None
                else f">= {minimum}"
                if minimum is not None
                else f"<= {maximum}"
            )
            raise self.error(key, f"a whole number {bounds}")
        return value

    def number(self, key: str, default: float, minimum: float | None = None) -> float:
        value = self.config.get(key)
        if value is None or value == "":
            return default
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise self.error(key, "a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, "a number")
        if minimum is not None and value < minimum:
            raise self.error(key, f"a number >= {minimum}")
        if not -MAX_WHOLE <= value <= MAX_WHOLE:  # also nan
            raise self.error(key, f"a number between {-MAX_WHOLE} and {MAX_WHOLE}")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.config.get(key)
        if value is None or value == "":
            return default
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise self.error(key, "true or false")
        return value

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.config.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(key, "an object")
        return dict(value)

    def items(self, key: str) -> list[Any] | None:
        value = self.config.get(key)
        if value is None:
            return None
        if not isinstance(value, (list, tuple)):
            raise self.error(key, "a list")
        return list(value)

    def names(self, key: str) -> tuple[str, ...] | None:
        """A list of column names (also accepted: one comma-separated string)."""
        value = self.config.get(key)
        if value is None or value == "" or value == []:
            return None
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, "a list of column names")
        return tuple(value)


__all__ = ["Options", "RESERVED_SOURCE_KEYS", "canonical"]
