"""Small helpers for error messages: where in the SQL, and what the user probably meant."""

from __future__ import annotations

import difflib
from typing import Iterable


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of character ``offset`` in ``text`` (an editor's numbering)."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word`` (case-insensitive), or None when none is close."""
    pool = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(word.lower(), list(pool), n=1, cutoff=0.6)
    return pool[match[0]] if match else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"did you mean 'x'?"`` or an empty string."""
    best = closest(word, candidates)
    return f"did you mean '{best}'?" if best else ""


def listing(names: Iterable[str], limit: int = 12) -> str:
    """``"a, b, c"``, shortened to ``limit`` names with a count of the rest."""
    items = sorted(names)
    if not items:
        return "none"
    head = ", ".join(items[:limit])
    return head if len(items) <= limit else f"{head}, ... ({len(items) - limit} more)"


__all__ = ["closest", "did_you_mean", "line_col", "listing"]
