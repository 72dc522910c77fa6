"""How long and how deeply nested a SQL statement may be.

sqlglot parses and the planner compiles by recursion, about twenty Python frames for each
level of brackets, so a statement nested a few dozen levels deep exhausts Python's
recursion limit (a 500, and 5,000 levels took seconds to fail). :func:`check_sql_limits`
refuses such a statement before it is parsed, in one pass over the text that stops at the
limit, with a message naming the limit; the control plane calls it before a statement
travels to a worker. Deep trees without brackets (a chain of a thousand ``AND``, a hundred
``NOT NOT ...``) are caught by :func:`nesting_guard` around parsing and planning.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable, TypeVar

from .errors import SqlError
from .hints import line_col

#: The longest statement accepted, in characters.
MAX_SQL_CHARS = 100_000
#: The deepest nesting of brackets, ``(`` and ``[`` (function calls, sub-expressions, types).
MAX_SQL_DEPTH = 24

#: Quoted parts (their brackets do not count) and brackets, in eKuiper's quoting (MySQL's).
_PARTS = re.compile(r"""'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|`(?:[^`]|``)*`|[()\[\]]""", re.S)

F = TypeVar("F", bound=Callable[..., Any])


def check_sql_limits(sql: str) -> None:
    """Raise :class:`SqlError` when ``sql`` is longer than :data:`MAX_SQL_CHARS` or nests
    brackets deeper than :data:`MAX_SQL_DEPTH`."""
    if len(sql) > MAX_SQL_CHARS:
        raise SqlError(f"the SQL is {len(sql)} characters long, over the limit of {MAX_SQL_CHARS}",
                       hint="shorten the statement, e.g. split it into several rules")
    if sql.count("(") + sql.count("[") <= MAX_SQL_DEPTH:
        return
    depth = 0
    for match in _PARTS.finditer(sql):
        token = match.group()
        if token in ("(", "["):
            depth += 1
            if depth > MAX_SQL_DEPTH:
                line, col = line_col(sql, match.start())
                raise SqlError(f"the SQL nests brackets deeper than the limit of {MAX_SQL_DEPTH} levels",
                               line=line, col=col, hint="simplify the expression: fewer brackets or nested calls")
        elif token in (")", "]"):
            depth -= 1


def nesting_guard(fn: F) -> F:
    """Turn a ``RecursionError`` of parsing or planning into a :class:`SqlError`."""

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RecursionError:
            raise SqlError(
                "the SQL is nested too deeply to plan (a long chain of AND, OR or operators, or of NOT)",
                hint=f"use IN (...) for a long chain of OR, or split the expression; brackets may nest up to"
                     f" {MAX_SQL_DEPTH} levels") from None

    return guarded  # type: ignore[return-value]


__all__ = ["MAX_SQL_CHARS", "MAX_SQL_DEPTH", "check_sql_limits", "nesting_guard"]
