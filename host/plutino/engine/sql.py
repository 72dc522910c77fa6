"""Reading a rule's SQL with sqlglot, and pointing at places in it.

The dialect is MySQL's tokenizer (eKuiper's quoting: ``"text"`` and ``'text'`` are strings,
backticks quote names) with sqlglot's function table emptied, so that every function call
parses as a plain name plus arguments: ``cast(x, "bigint")`` and ``substring(s, 1, 2)`` are
eKuiper calls, not SQL-standard syntax, and the engine resolves names itself (built-ins first,
then plugins).
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import ParseError, TokenError

from .errors import SqlError
from .hints import line_col
from .sql_limits import check_sql_limits, nesting_guard


class EkuiperSQL(MySQL):
    """MySQL's lexer and grammar, with every function parsed as ``exp.Anonymous`` except CAST,
    which accepts both eKuiper's ``cast(x, "bigint")`` and SQL's ``CAST(x AS BIGINT)``."""

    class Parser(MySQL.Parser):  # type: ignore[misc, valid-type]  # sqlglot declares it as an alias
        FUNCTIONS: dict = {}
        FUNCTION_PARSERS: dict = {"CAST": MySQL.Parser.FUNCTION_PARSERS["CAST"]}
        NO_PAREN_FUNCTIONS: dict = {}


_TOKEN_REPR = re.compile(r"<Token token_type: TokenType\.(\w+), text: ([^,]*),.*?>")
_MISSING = re.compile(r"Required keyword: '(\w+)' missing for <class '[\w.]*?(\w+)'>")


@nesting_guard
def parse_select(sql: str) -> exp.Select:
    """Parse one SELECT statement; raise :class:`SqlError` with the place of a syntax error."""
    check_sql_limits(sql)
    try:
        tokens = EkuiperSQL().tokenize(sql)
    except TokenError as exc:
        raise SqlError(f"cannot read the SQL ({exc})", hint="check that every quote and bracket is closed") from None
    if not tokens:
        raise SqlError("the SQL is empty", hint="write a query such as SELECT * FROM demo")
    if tokens[0].text.upper() != "SELECT":
        line, col = line_col(sql, tokens[0].start)
        hint = (
            "stream statements (CREATE STREAM ...) go to POST /streams"
            if tokens[0].text.upper() in ("CREATE", "DROP", "DESCRIBE", "SHOW")
            else "write a query such as SELECT * FROM demo"
        )
        raise SqlError(f"a rule's SQL must be a SELECT, got '{tokens[0].text}'", line=line, col=col, hint=hint)
    for i, tok in enumerate(tokens[:-1]):
        if tok.text == ";":
            line, col = line_col(sql, tokens[i + 1].start)
            raise SqlError(
                "a rule runs one statement, got more than one",
                line=line,
                col=col,
                hint="remove the ';' and what follows, or make a rule for each query",
            )
    try:
        statements = [s for s in sqlglot.parse(sql, dialect=EkuiperSQL) if s is not None]
    except ParseError as exc:
        raise _parse_error(sql, exc) from None
    except TokenError as exc:
        raise SqlError(f"cannot read the SQL ({exc})", hint="check that every quote and bracket is closed") from None
    stmt = statements[0] if statements else None
    if not isinstance(stmt, exp.Select):
        raise SqlError(
            "a rule's SQL must be one SELECT statement", line=1, col=1, hint="write a query such as SELECT * FROM demo"
        )
    return stmt


def _parse_error(sql: str, exc: ParseError) -> SqlError:
    info = exc.errors[0] if exc.errors else {}
    description = str(info.get("description") or exc)
    highlight = str(info.get("highlight") or "")
    line = info.get("line")
    col = info.get("col")
    if "SENTINEL" in description:
        description = _TOKEN_REPR.sub("", description).replace(" but got ", "").strip()
        problem = f"the SQL ends too early: {description.lower()}"
        if line is None:
            line, col = line_col(sql, len(sql.rstrip()))
        return SqlError(problem, line=line, col=col, hint="complete the statement")
    description = _TOKEN_REPR.sub(lambda m: f"'{m.group(2)}'", description)
    if _MISSING.search(description):
        return SqlError(
            f"cannot parse the SQL: '{highlight}' is incomplete",
            line=line,
            col=None if line is None or col is None else max(1, int(col) - len(highlight) + 1),
            hint="complete the expression after it",
        )
    if line is not None and col is not None and highlight:
        col = max(1, int(col) - len(highlight) + 1)  # sqlglot points at the token's last character
    problem = f"cannot parse the SQL: {_lower_first(description) or 'syntax error'}"
    if highlight:
        problem += f" near '{highlight}'"
    return SqlError(problem, line=line, col=col, hint="check the syntax around that place")


def _lower_first(text: str) -> str:
    return text[0].lower() + text[1:] if len(text) > 1 and text[1].islower() else text


def position(sql: str, node: exp.Expression) -> tuple[int | None, int | None]:
    """Line and column where ``node`` starts in ``sql``, from the tokens sqlglot recorded."""
    best: int | None = None
    for sub in node.walk():
        for candidate in (sub, sub.args.get("this") if isinstance(sub.args.get("this"), exp.Expression) else None):
            meta = getattr(candidate, "_meta", None) if candidate is not None else None
            if meta and "start" in meta:
                start = int(meta["start"])
                best = start if best is None else min(best, start)
    if best is None:
        return None, None
    return line_col(sql, best)


__all__ = ["EkuiperSQL", "parse_select", "position"]
