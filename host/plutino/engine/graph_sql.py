"""The SELECT that a chain of graph-rule operators amounts to (see :mod:`.graph_rule`).

Each operator node adds to one query: filter to WHERE (HAVING once the window's rows are
grouped), function and aggfunc to the SELECT list, pick replaces the SELECT list, window and
groupby make GROUP BY, orderby ORDER BY. The user's expressions are kept as written, token for
token (sqlglot's generator would respell eKuiper's ``a->b`` and ``cast(x, "bigint")``); a field
an earlier node computed is put in as its expression, since WHERE, GROUP BY and HAVING cannot
name a SELECT alias.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from sqlglot import exp
from sqlglot.tokens import TokenType

from .errors import RuleError, SqlError
from .hints import did_you_mean
from .sql import EkuiperSQL, parse_select
from .sql_limits import MAX_SQL_CHARS

#: The window types of a window node (eKuiper's names, those of the SQL window functions).
WINDOWS = ("tumblingwindow", "hoppingwindow", "slidingwindow", "sessionwindow", "countwindow")
UNITS = ("dd", "hh", "mi", "ss", "ms")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACE = "__graph__"


@dataclass(frozen=True)
class GraphNode:
    """One node of a graph rule, its type and nodeType in lower case (but a plugin's name)."""

    name: str
    type: str
    kind: str  # nodeType: the plugin of a source or sink, the operator's name (lower case)
    props: Mapping[str, Any]


@dataclass
class GraphQuery:
    """The SELECT a chain of operators amounts to, built node by node.

    ``defs`` holds the fields that function, aggfunc and pick nodes computed (name -> SQL):
    a later node naming one gets the expression itself, since WHERE, GROUP BY and HAVING
    cannot name a SELECT alias. Items keep the user's text, token for token.
    """

    rule_id: str
    stream: str
    items: list[tuple[str | None, str]] = field(default_factory=lambda: [(None, "*")])
    defs: dict[str, str] = field(default_factory=dict)
    where: list[str] = field(default_factory=list)
    window: str = ""
    window_node: str = ""
    group_node: str = ""  # the groupby or aggfunc node that grouped the window's rows
    dims: list[str] = field(default_factory=list)
    having: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    size: int = 0  # characters of SQL so far

    def error(self, node: GraphNode, problem: str) -> RuleError:
        return RuleError(f"graph rule '{self.rule_id}': node '{node.name}' ({node.kind}) {problem}")

    def add(self, node: GraphNode) -> None:
        if node.kind in ("aggfunc", "groupby", "orderby") and not self.window:
            raise self.error(node, "needs a window before it: add a window node between the source and it")
        getattr(self, "_" + node.kind)(node)

    def _filter(self, node: GraphNode) -> None:
        text = self._prop(node, "expr", "a condition such as temperature > 20")
        _, expr, _ = self._parse(node, "expr", text, condition=True)
        (self.having if self.group_node else self.where).append(expr)

    def _function(self, node: GraphNode) -> None:
        self._field(node, self._prop(node, "expr", "a call such as log(temperature) AS log_temperature"))

    def _aggfunc(self, node: GraphNode) -> None:
        self._field(node, self._prop(node, "expr", "an aggregate call such as count(*) AS n"))
        self.group_node = self.group_node or node.name

    def _field(self, node: GraphNode, text: str) -> None:
        tree, expr, alias = self._parse(node, "expr", text)
        name = alias or (str(tree.this) if isinstance(tree, exp.Anonymous) else None)
        if name is None:
            raise self.error(node, f"computes {text!r} without a name; name it: {text} AS <name>")
        self.defs[name] = expr
        self._put(name, f"{expr} AS {ident(name)}")

    def _put(self, name: str, item: str) -> None:
        for i, (have, _) in enumerate(self.items):
            if have == name:
                self.items[i] = (name, item)
                return
        self.items.append((name, item))

    def _pick(self, node: GraphNode) -> None:
        fields = self._list(node, "fields", 'the fields to send, e.g. "fields": ["temperature", "humidity"]')
        items: list[tuple[str | None, str]] = []
        for text in fields:
            tree, expr, alias = self._parse(node, "field", text)
            if alias:
                self.defs[alias] = expr
                items.append((alias, f"{expr} AS {ident(alias)}"))
            elif isinstance(tree, exp.Column) and not tree.table and tree.name in self.defs:
                items.append((tree.name, f"{expr} AS {ident(tree.name)}"))
            else:
                items.append((tree.name if isinstance(tree, exp.Column) else None, expr))
        self.items = items

    def _window(self, node: GraphNode) -> None:
        if self.window:
            raise self.error(node, f"comes after the window '{self.window_node}'; a rule has one window")
        p = node.props
        kind = str(p.get("type", "")).lower()
        if kind not in WINDOWS:
            hint = did_you_mean(kind, WINDOWS)
            raise self.error(node, f"has type {p.get('type')!r}; {hint + ' ' if hint else ''}"
                                   f"window types: {', '.join(WINDOWS)}")
        size, interval = p.get("size"), p.get("interval", 0)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise self.error(node, f"has size {size!r}; give a whole number > 0")
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 0:
            raise self.error(node, f"has interval {interval!r}; give a whole number >= 0")
        unit = str(p.get("unit", "")).lower()
        if kind != "countwindow" and unit not in UNITS:
            raise self.error(node, f"has unit {p.get('unit')!r}; give one of {', '.join(UNITS)}")
        if kind in ("tumblingwindow", "slidingwindow") and interval not in (0, size):
            raise self.error(node, f"has interval {interval} and size {size}; a {kind} has no interval of its own: "
                                   "drop it (or use a hoppingwindow)")
        if kind in ("hoppingwindow", "sessionwindow") and interval == 0:
            what = "the hop" if kind == "hoppingwindow" else "the timeout"
            raise self.error(node, f"has no interval; give {what} as interval, a whole number > 0")
        if kind in ("hoppingwindow", "countwindow") and interval > size:
            raise self.error(node, f"has interval {interval} larger than its size {size}; use interval <= size")
        shapes: dict[str, list[Any]] = {
            "tumblingwindow": [unit, size], "slidingwindow": [unit, size],
            "hoppingwindow": [unit, size, interval], "sessionwindow": [unit, size, interval],
            "countwindow": [size] + ([interval] if interval not in (0, size) else [])}
        args = shapes[kind]
        self.window = f"{kind.upper()}({', '.join(str(a) for a in args)})"
        self.window_node = node.name

    def _groupby(self, node: GraphNode) -> None:
        if self.group_node:
            raise self.error(node, f"comes after the grouping by '{self.group_node}'; a rule groups once: put every "
                                   "dimension in one groupby node before the aggfunc nodes")
        for text in self._list(node, "dimensions", 'the keys to group by, e.g. "dimensions": ["deviceId"]'):
            self.dims.append(self._parse(node, "dimension", text, alias=False)[1])
        self.group_node = node.name

    def _orderby(self, node: GraphNode) -> None:
        sorts = node.props.get("sorts")
        example = '"sorts": [{"field": "count", "order": "desc"}]'
        if not isinstance(sorts, list) or not sorts or not all(isinstance(s, Mapping) for s in sorts):
            raise self.error(node, f"needs sorts, a list of sort conditions, e.g. {example}")
        keys = []
        for s in sorts:
            text = s.get("field")
            if not isinstance(text, str) or not text.strip():
                raise self.error(node, f"has a sort without a field, {dict(s)!r}; e.g. {example}")
            order = str(s.get("order", "asc")).lower()
            if order not in ("asc", "desc") or not isinstance(s.get("desc", False), bool):
                raise self.error(node, f"has the sort {dict(s)!r}; give \"order\": \"asc\" or \"desc\"")
            expr = self._parse(node, "field", text, alias=False)[1]
            keys.append(expr + (" DESC" if order == "desc" or s.get("desc") else ""))
        self.order = keys + self.order  # a later sort decides first; the earlier order breaks its ties

    def _prop(self, node: GraphNode, key: str, example: str) -> str:
        text = node.props.get(key)
        if not isinstance(text, str) or not text.strip():
            raise self.error(node, f'needs "{key}": {example}')
        return text

    def _list(self, node: GraphNode, key: str, example: str) -> list[str]:
        value = node.props.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.error(node, f"needs {example}")
        return value

    def _parse(self, node: GraphNode, what: str, text: str, *, condition: bool = False, alias: bool = True
               ) -> tuple[exp.Expression, str, str]:
        """(the tree of ``text``, its text with the fields of ``defs`` put in, its alias or "")."""
        sql = f"SELECT * FROM {_PLACE} WHERE {text}" if condition else f"SELECT {text}\nFROM {_PLACE}"
        try:
            select = parse_select(sql)
        except SqlError as exc:
            raise self.error(node, f"cannot read {what} {text!r}: {exc.problem}") from None
        allowed = {"expressions", "from", "from_", *(["where"] if condition else [])}
        used = {k for k, v in select.args.items() if v} - allowed
        tree = select.args["where"].this if condition else select.expressions[0]
        if used or len(select.expressions) != 1 or (isinstance(tree, exp.Alias) and not alias):
            one = "one condition" if condition else "one expression" + ("" if alias else " without AS")
            raise self.error(node, f"has {what} {text!r}; give {one}")
        tokens = EkuiperSQL().tokenize(text)
        name = ""
        if isinstance(tree, exp.Alias):
            name, tree = tree.alias, tree.this
            tokens = tokens[:-2] if len(tokens) > 2 and tokens[-2].token_type == TokenType.ALIAS else tokens[:-1]
        expr = _render(text, tokens, self.defs, MAX_SQL_CHARS - self.size)
        if expr is None:
            raise self.error(node, f"makes the rule's SQL longer than {MAX_SQL_CHARS} characters once the fields it "
                                   "names are put in; compute fewer fields from each other")
        self.size += len(expr)
        return tree, expr, name

    def sql(self) -> str:
        lines = [f"SELECT {', '.join(item for _, item in self.items)}", f"FROM {ident(self.stream)}"]
        if self.where:
            lines.append("WHERE " + _conjunction(self.where))
        if self.window:
            lines.append("GROUP BY " + ", ".join([self.window, *self.dims]))
        if self.having:
            lines.append("HAVING " + _conjunction(self.having))
        if self.order:
            lines.append("ORDER BY " + ", ".join(self.order))
        return "\n".join(lines)


def _render(text: str, tokens: list[Any], defs: Mapping[str, str], budget: int) -> str | None:
    """``tokens`` of ``text`` again, comments left out, each field of ``defs`` they name as a
    column replaced by its expression in brackets; None once it is longer than ``budget``
    (fields computed from fields can double the text at each node)."""
    out: list[str] = []
    size = 0
    for i, tok in enumerate(tokens):
        piece = text[tok.start:tok.end + 1]
        before = tokens[i - 1].token_type if i else None
        after = tokens[i + 1].token_type if i + 1 < len(tokens) else None
        if (tok.token_type in (TokenType.VAR, TokenType.IDENTIFIER) and tok.text in defs
                and before not in (TokenType.DOT, TokenType.ARROW) and after not in (TokenType.L_PAREN, TokenType.DOT)):
            piece = f"({defs[tok.text]})"
        if out and tok.start > tokens[i - 1].end + 1:
            out.append(" ")
        out.append(piece)
        size += len(piece) + 1
        if size > budget:
            return None
    return "".join(out)


def _conjunction(conditions: list[str]) -> str:
    return conditions[0] if len(conditions) == 1 else " AND ".join(f"({c})" for c in conditions)


def ident(name: str) -> str:
    """``name`` as SQL writes a column or stream: in backticks unless it is a plain name."""
    plain = _NAME.match(name) and [t.token_type for t in EkuiperSQL().tokenize(name)] == [TokenType.VAR]
    return name if plain else "`" + name.replace("`", "``") + "`"


__all__ = ["GraphNode", "GraphQuery", "UNITS", "WINDOWS", "ident"]
