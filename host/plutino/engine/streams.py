"""Stream definitions and the statements that manage them.

``CREATE STREAM demo (temperature FLOAT, humidity BIGINT) WITH (DATASOURCE="topic/demo",
TYPE="mqtt", FORMAT="JSON", CONF_KEY="default", TIMESTAMP="ts")`` declares where a stream's
rows come from and, optionally, their schema; ``CREATE STREAM demo () WITH (...)`` declares a
schemaless stream whose columns are learned from the data. A WITH property that is not one of
eKuiper's stream properties belongs to the source plugin (``WITH (TYPE="random", seed=7)``):
it is kept in ``StreamDef.props`` and checked against the plugin when the stream is created
(:mod:`.plugin_props`). ``DROP STREAM``, ``DESCRIBE
STREAM`` and ``SHOW STREAMS`` complete the set, as in eKuiper.

The statements are read with sqlglot's tokenizer (MySQL flavour: ``"..."`` and ``'...'`` are
strings, backticks quote names, as in eKuiper) and a small parser here, because sqlglot has
no grammar for eKuiper's CREATE STREAM.
"""

from __future__ import annotations

from typing import Any, Callable

import pyarrow as pa
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import TokenError
from sqlglot.tokens import Token, TokenType

from plutino.names import STREAM_NAME

from .errors import SqlError
from .hints import did_you_mean, line_col
from .sql_limits import check_sql_limits
from .stream_checks import FORMATS, check_stream
from .stream_def import (
    STREAM_OPTIONS,
    TABLE_OPTIONS,
    CreateStream,
    DescribeStream,
    DropStream,
    ShowStreams,
    Statement,
    StreamDef,
)
from .types import SCALAR_TYPES

_TYPES_HINT = "use one of: bigint, float, string, datetime, boolean, bytea, array(<type>), struct(<field> <type>, ...)"
_STATEMENTS_HINT = ("a stream statement is CREATE, DROP or DESCRIBE STREAM (or TABLE), SHOW STREAMS or "
                    "SHOW TABLES")


def parse_stream_statement(sql: str) -> Statement:
    """Parse one stream statement; raise :class:`SqlError` naming the place of a mistake."""
    return _StreamParser(sql).statement()


def parse_create_stream(sql: str) -> StreamDef:
    """Parse a CREATE STREAM statement (and nothing else) into a :class:`StreamDef`."""
    stmt = parse_stream_statement(sql)
    if not isinstance(stmt, CreateStream):
        raise SqlError(f"expected CREATE STREAM, got {type(stmt).__name__}", line=1, col=1, hint=_STATEMENTS_HINT)
    return stmt.stream


class _StreamParser:
    def __init__(self, sql: str) -> None:
        self.sql = sql
        check_sql_limits(sql)
        try:
            self.tokens: list[Token] = [t for t in MySQL().tokenize(sql) if t.token_type != TokenType.SEMICOLON]
        except TokenError as exc:
            raise SqlError(f"cannot read the statement: {exc}", hint="check the quotes and brackets") from None
        self.pos = 0

    # -- token helpers -------------------------------------------------------------------
    def _peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _error(self, problem: str, token: Token | None, hint: str = "") -> SqlError:
        if token is None:
            line, col = line_col(self.sql, len(self.sql.rstrip().rstrip(";")))
            return SqlError(problem + ", got the end of the statement", line=line, col=col, hint=hint)
        line, col = line_col(self.sql, token.start)
        return SqlError(problem, line=line, col=col, hint=hint)

    def _next(self, what: str, hint: str = "") -> Token:
        tok = self._peek()
        if tok is None:
            raise self._error(f"expected {what}", None, hint)
        self.pos += 1
        return tok

    def _word(self, tok: Token | None) -> str:
        return "" if tok is None else tok.text.upper()

    def _expect(self, text: str, hint: str = "") -> Token:
        tok = self._peek()
        if tok is None or tok.text.upper() != text:
            shown = f"expected '{text}'" + ("" if tok is None else f", got '{tok.text}'")
            raise self._error(shown, tok, hint)
        self.pos += 1
        return tok

    def _name(self, what: str) -> tuple[str, Token]:
        tok = self._next(what)
        if tok.token_type in (TokenType.STRING, TokenType.NUMBER) or not tok.text or not _is_name(tok):
            raise self._error(
                f"expected {what}, got '{tok.text}'", tok, "names are letters, digits and '_', or quoted with backticks"
            )
        return tok.text, tok

    def _end(self) -> None:
        tok = self._peek()
        if tok is not None:
            raise self._error(
                f"unexpected '{tok.text}' after the end of the statement", tok, "remove it, or split the statements"
            )

    # -- grammar -----------------------------------------------------------------------
    def statement(self) -> Statement:
        first = self._peek()
        verb = self._word(first)
        if verb in ("CREATE", "DROP", "DESCRIBE", "DESC", "SHOW"):
            self.pos += 1
            noun = self._word(self._peek())
            table = noun in ("TABLE", "TABLES")
            if verb == "SHOW":
                self._expect("TABLES" if table else "STREAMS", _STATEMENTS_HINT)
                self._end()
                return ShowStreams(table)
            self._expect("TABLE" if table else "STREAM", _STATEMENTS_HINT)
            if verb == "CREATE":
                return CreateStream(self._create(table))
            name, _ = self._name(f"a {noun.lower()} name")
            self._end()
            return DropStream(name, table) if verb == "DROP" else DescribeStream(name, table)
        got = "nothing" if first is None else f"'{first.text}'"
        raise self._error(f"expected a stream statement, got {got}", first, _STATEMENTS_HINT)

    def _create(self, table: bool = False) -> StreamDef:
        name, tok = self._name("a table name" if table else "a stream name")
        if not STREAM_NAME.ok(name):
            raise self._error(STREAM_NAME.message(name, "table name" if table else None), tok)
        self._expect(
            "(",
            "write the fields in brackets after the name, or '()' for a schemaless stream: "
            f"CREATE STREAM {name} () WITH (...)",
        )
        fields: list[tuple[str, pa.DataType]] = []
        if self._word(self._peek()) != ")":
            fields = self._fields(closing_hint="separate fields with ',' and close the list with ')'")
        self._expect(")")
        options, props, places = self._with(name, table)
        self._end()
        lead = len(self.sql) - len(self.sql.lstrip())  # offsets into the stripped statement
        stream = StreamDef(
            name=name, fields=tuple(fields), options=tuple(options.items()), sql=self.sql.strip(),
            schemaless=not fields,
            props=tuple(props.items()), prop_places=tuple((k, at - lead) for k, at in places.items()),
            kind=(options.get("KIND") or "scan").lower() if table else "stream",
        )
        check_stream(stream)
        return stream

    def _fields(self, closing_hint: str) -> list[tuple[str, pa.DataType]]:
        fields: list[tuple[str, pa.DataType]] = []
        seen: set[str] = set()
        while True:
            fname, ftok = self._name("a field name")
            if fname in seen:
                raise self._error(f"field '{fname}' is declared twice", ftok, "give each field one declaration")
            seen.add(fname)
            fields.append((fname, self._type(fname)))
            tok = self._peek()
            if self._word(tok) == ",":
                self.pos += 1
                if self._word(self._peek()) == ")":  # a trailing comma, which eKuiper accepts
                    return fields
                continue
            if self._word(tok) == ")":
                return fields
            raise self._error(
                f"expected ',' or ')' after field '{fname}'" + ("" if tok is None else f", got '{tok.text}'"),
                tok,
                closing_hint,
            )

    def _type(self, fname: str) -> pa.DataType:
        tok = self._peek()
        if tok is None or tok.text in (",", ")"):
            raise self._error(f"field '{fname}' has no type", tok, _TYPES_HINT)
        self.pos += 1
        word = tok.text.lower()
        if word in SCALAR_TYPES:
            return SCALAR_TYPES[word]
        if word == "array":
            if self._word(self._peek()) != "(":
                raise self._error(
                    f"array field '{fname}' needs its element type",
                    self._peek() or tok,
                    f"write {fname} ARRAY(BIGINT), for example",
                )
            self.pos += 1
            inner = self._type(fname)
            self._expect(")", f"close the element type of '{fname}' with ')'")
            return pa.list_(inner)
        if word == "struct":
            if self._word(self._peek()) != "(":
                raise self._error(
                    f"struct field '{fname}' needs its fields",
                    self._peek() or tok,
                    f"write {fname} STRUCT(a BIGINT, b STRING), for example",
                )
            self.pos += 1
            inner_fields = self._fields(
                closing_hint=f"separate the fields of struct '{fname}' with ',' and close them with ')'"
            )
            self._expect(")")
            return pa.struct([pa.field(n, t) for n, t in inner_fields])
        hint = did_you_mean(word, [*SCALAR_TYPES, "array", "struct"])
        raise self._error(f"unknown type '{tok.text}' for field '{fname}'", tok, f"{hint} {_TYPES_HINT}".strip())

    def _with(self, stream: str, table: bool) -> tuple[dict[str, str | None], dict[str, Any], dict[str, int]]:
        """The stream's properties (defaults filled in), the plugin's (as written) and where
        each of the plugin's names is."""
        known = {**STREAM_OPTIONS, **TABLE_OPTIONS} if table else STREAM_OPTIONS
        options: dict[str, str | None] = dict(known)
        props: dict[str, Any] = {}
        places: dict[str, int] = {}
        tok = self._peek()
        if tok is None:
            return options, props, places
        if self._word(tok) != "WITH":
            raise self._error(
                f"expected WITH (...) after the fields of stream '{stream}', got '{tok.text}'",
                tok,
                'write WITH (DATASOURCE="...", TYPE="...", FORMAT="json")',
            )
        self.pos += 1
        self._expect("(", 'write the properties in brackets: WITH (TYPE="random")')
        given: set[str] = set()
        while True:
            key_tok = self._next("a property name such as TYPE")
            key = key_tok.text.upper()
            if key_tok.token_type in (TokenType.STRING, TokenType.NUMBER) or not _is_name(key_tok):
                raise self._error(f"expected a property name, got '{key_tok.text}'", key_tok,
                                  'write NAME="value", e.g. TYPE="random"')
            if key in given:
                raise self._error(f"property {key} is given twice", key_tok, "keep one")
            given.add(key)
            self._expect("=", f'write {key_tok.text}="value"')
            value_tok = self._next(f"a value for {key_tok.text}")
            if value_tok.token_type not in _VALUE_TOKENS:
                raise self._error(
                    f"the value of {key_tok.text} must be a quoted string, got '{value_tok.text}'",
                    value_tok,
                    f'write {key_tok.text}="{value_tok.text}"',
                )
            if key in known:
                options[key] = value_tok.text
            elif key in TABLE_OPTIONS:
                raise self._error(f"{key} is a property of tables", key_tok,
                                  f"remove it, or create a table: CREATE TABLE {stream} (...) WITH (...)")
            else:  # the source plugin's own: checked against it when the stream is created
                props[key_tok.text] = _VALUE_TOKENS[value_tok.token_type](value_tok.text)
                places[key_tok.text] = key_tok.start
            sep = self._peek()
            if self._word(sep) == ",":
                self.pos += 1
                continue
            if self._word(sep) == ")":
                self.pos += 1
                return options, props, places
            raise self._error(
                "expected ',' or ')' in WITH" + ("" if sep is None else f", got '{sep.text}'"),
                sep,
                "separate properties with ',' and close the list with ')'",
            )


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


#: The tokens a WITH value may be, and the value a plugin property gets from each.
_VALUE_TOKENS: dict[TokenType, Callable[[str], Any]] = {
    TokenType.STRING: str, TokenType.NUMBER: _number, TokenType.TRUE: lambda t: True, TokenType.FALSE: lambda t: False}


def _is_name(tok: Token) -> bool:
    if tok.token_type == TokenType.IDENTIFIER:  # backtick-quoted
        return True
    return tok.text.replace("_", "a").isalnum() and not tok.text[0].isdigit()


__all__ = [
    "CreateStream",
    "DescribeStream",
    "DropStream",
    "FORMATS",
    "STREAM_OPTIONS",
    "ShowStreams",
    "Statement",
    "StreamDef",
    "parse_create_stream",
    "parse_stream_statement",
]
