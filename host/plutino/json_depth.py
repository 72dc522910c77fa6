"""JSON from outside (request bodies, package manifests, import documents, the store), read
with a limit on how deeply it nests.

Python's ``json`` reads nesting by recursion: a document 1,000 levels deep raises
``RecursionError`` (a 500, or a crash at start-up), and one a few hundred deep is read but
breaks whatever walks it next. No document Plutino reads needs more than a handful of levels,
so the nesting is counted on the text first, in one pass that stops at the limit, and a
deeper document is refused as not valid JSON, naming the limit.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: The deepest nesting of objects and arrays Plutino reads (a rule body nests about 5 levels).
MAX_JSON_DEPTH = 64

_TEXT_PARTS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)
_BYTES_PARTS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)


class JsonTooDeep(json.JSONDecodeError):
    """A document nested deeper than :data:`MAX_JSON_DEPTH`. A ``JSONDecodeError``, so every
    reader that refuses invalid JSON refuses it in the same words, with its place."""

    def __init__(self, doc: str, pos: int, limit: int = MAX_JSON_DEPTH) -> None:
        super().__init__(f"it nests deeper than {limit} levels of objects and arrays, Plutino's limit; "
                         "flatten the document", doc, pos)


def too_deep_at(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> int | None:
    """The offset of the first ``[`` or ``{`` that opens level ``limit + 1``, or None.

    Strings are skipped whole, so brackets inside them do not count; the scan stops at the
    first bracket over the limit, so a megabyte of ``[`` costs no more than ``limit`` of them."""
    is_bytes = isinstance(text, (bytes, bytearray))
    doc: Any = text  # bytes or str, and the pattern and brackets of the same kind
    parts: re.Pattern[Any] = _BYTES_PARTS if is_bytes else _TEXT_PARTS
    opening: Any = b"[{" if is_bytes else "[{"
    if doc.count(opening[:1]) + doc.count(opening[1:]) <= limit:
        return None  # nearly every document: too few brackets to be too deep
    depth = 0
    for match in parts.finditer(doc):
        token = match.group()
        if len(token) != 1:
            continue  # a string
        if token in opening:
            depth += 1
            if depth > limit:
                return match.start()
        else:
            depth -= 1
    return None


def loads(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that raises :class:`JsonTooDeep` for a document nested over ``limit``."""
    at = too_deep_at(text, limit)
    if at is not None:
        doc = text.decode("utf-8", "replace") if isinstance(text, (bytes, bytearray)) else text
        raise JsonTooDeep(doc, at, limit)
    return json.loads(text)


__all__ = ["JsonTooDeep", "MAX_JSON_DEPTH", "loads", "too_deep_at"]
