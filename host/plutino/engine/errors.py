"""The engine's errors: SQL that cannot run, and streams or rules that are missing or taken.

Each carries a message for the person who wrote the SQL or the rule. A :class:`SqlError`
names the place in the statement (line and column, 1-based, as an editor shows them) and
says how to fix it; the structured fields beside the message are for the REST layer.
"""

from __future__ import annotations

from plutino.errors import PlutinoError


class SqlError(PlutinoError):
    """A statement that cannot be parsed, validated or planned.

    The message reads ``"<problem> at line L, col C; <hint>"``; ``line``/``col`` are None when
    the problem has no single place (a missing clause, a stream that does not exist).
    """

    def __init__(self, problem: str, *, line: int | None = None, col: int | None = None, hint: str = "") -> None:
        self.problem = problem
        self.line = line
        self.col = col
        self.hint = hint
        message = problem
        if line is not None:
            message += f" at line {line}, col {col}"
        if hint:
            message += f"; {hint}"
        super().__init__(message)

    def __reduce__(self):  # keep the fields through pickling (process pools, logging handlers)
        return (_rebuild_sql_error, (self.problem, self.line, self.col, self.hint))


def _rebuild_sql_error(problem: str, line: int | None, col: int | None, hint: str) -> SqlError:
    return SqlError(problem, line=line, col=col, hint=hint)


class NotFoundError(PlutinoError):
    """A stream, table or rule that does not exist (REST: 404). ``what`` is "stream", "table"
    or "rule"; ``extra`` is said after the name."""

    def __init__(self, what: str, name: str, known: list[str], extra: str = "") -> None:
        self.what = what
        self.name = name
        self.known = known
        self.extra = extra
        listing = ", ".join(sorted(known)) if known else "none"
        super().__init__(f"{what} '{name}' not found{extra}; existing {what}s: {listing}")

    def __reduce__(self) -> tuple:
        return (type(self), (self.what, self.name, self.known, self.extra))


class AlreadyExistsError(PlutinoError):
    """A stream or rule name that is taken (REST: 400, as eKuiper answers)."""

    def __init__(self, what: str, name: str, fix: str) -> None:
        self.what = what
        self.name = name
        super().__init__(f"{what} '{name}' already exists; {fix}")


class RuleError(PlutinoError):
    """A rule definition that is not valid apart from its SQL: id, actions, options."""


__all__ = ["AlreadyExistsError", "NotFoundError", "RuleError", "SqlError"]
