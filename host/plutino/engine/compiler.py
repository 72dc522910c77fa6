"""Compiling SQL expressions into closures over pyarrow.compute, checked once at rule creation.

Each sqlglot expression becomes an :class:`~plutino.engine.expr.Expr`: a closure that takes a RecordBatch and
returns an Arrow array (or a scalar, which operators broadcast), plus the result type when it
is known. Everything that can be decided before data arrives is decided here: columns are
resolved against the stream's schema, constants are folded into pre-built scalars, function
names are resolved (built-ins first, then plugins) and argument counts and types checked. A
type error is found by running the pyarrow kernel once on one null row of the argument
types, so the check and the execution can never disagree.

An expression is compiled in one of two modes. *Row* mode reads the stream's rows. *Group*
mode reads the grouped batch a window produces (one row per group): an aggregate call there
reads the column the aggregation step computed for it, a GROUP BY expression reads its key,
and a plain column reads the value of the group's first row.

Operators (arithmetic, comparison, logic, IS, BETWEEN, LIKE, IN, CASE) are in
:mod:`plutino.engine.sql_operators`, function calls (built-ins, plugins, casts, aggregates) in
:mod:`plutino.engine.calls`: both are mixins of the :class:`Compiler`.
"""

from __future__ import annotations

from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from . import functions as fns
from .calls import GroupContext
from .errors import SqlError
from .expr import Expr, Value, column, constant
from .hints import closest, listing
from .plugin_functions import FunctionLookup, FunctionUse
from .sql import position
from .sql_operators import BINARY_OPERATORS, Operators
from .types import type_name


class WindowBounds:
    """What a rule's functions read besides the rows: the window being emitted (window_start(),
    window_end(), ms since epoch), the arrival of the batch being processed (event_time()
    outside a window) and the rule (rule_id(), rule_start()), set by the pipeline and the
    running rule."""

    __slots__ = ("start", "end", "arrival", "rule_id", "rule_start")

    def __init__(self) -> None:
        self.start: int | None = None
        self.end: int | None = None
        self.arrival: int | None = None
        self.rule_id: str | None = None
        self.rule_start: int | None = None


class Compiler(Operators):
    """Compiles expressions of one query against one stream."""

    def __init__(
        self,
        sql: str,
        stream_name: str,
        columns: dict[str, pa.DataType] | None,
        lookup: FunctionLookup,
        *,
        alias: str | None = None,
        window: bool = False,
    ) -> None:
        self.sql = sql
        self.stream_name = stream_name
        self.table_names = {stream_name} | ({alias} if alias else set())
        self.columns = columns  # None: schemaless, any name is accepted
        self.lookup = lookup
        self.window = window
        self.bounds = WindowBounds()
        self.uses: list[FunctionUse] = []
        self.group: GroupContext | None = None
        self.grouping = False  # compiling in group mode
        self.clause = "SELECT"
        self.aliases: dict[str, Expr] = {}
        self.prefer_aliases = False
        self.select_aliases: set[str] = set()
        #: a JOIN's inputs: qualifier (alias or name) -> columns (None: schemaless); their
        #: columns are named "<qualifier>.<column>" in the joined batches
        self.sources: dict[str, dict[str, pa.DataType] | None] | None = None
        self.read: set[str] = set()  # the stream's columns the query reads

    # -- entry points ------------------------------------------------------------------------
    def row(self, node: exp.Expression, clause: str) -> Expr:
        return self._with_mode(node, clause, grouping=False)

    def grouped(self, node: exp.Expression, clause: str) -> Expr:
        return self._with_mode(node, clause, grouping=True)

    def _with_mode(self, node: exp.Expression, clause: str, grouping: bool) -> Expr:
        saved = (self.grouping, self.clause)
        self.grouping, self.clause = grouping, clause
        try:
            return self.compile(node)
        finally:
            self.grouping, self.clause = saved

    def error(self, node: exp.Expression | None, problem: str, hint: str = "") -> SqlError:
        line, col = position(self.sql, node) if node is not None else (None, None)
        return SqlError(problem, line=line, col=col, hint=hint)

    # -- the expression walk -------------------------------------------------------------------
    def compile(self, node: exp.Expression) -> Expr:
        if self.grouping and self.group is not None:
            for dim_node, slot, dim_type in self.group.dims:
                if node == dim_node:
                    return column(slot, dim_type, node.sql())
            if self.is_aggregate_call(node):
                spec = self.group.aggs.get(id(node))
                if spec is None:  # pragma: no cover - collect_aggregates saw every clause
                    raise self.error(node, f"aggregate {node.sql()} was not planned")
                return column(spec.slot, spec.type, node.sql())
        handler = _HANDLERS.get(type(node))
        if handler is None:
            raise self.error(
                node, f"unsupported expression '{node.sql()}'", "see docs/engine.md for the SQL Plutino runs"
            )
        return handler(self, node)

    def _paren(self, node: exp.Paren) -> Expr:
        return self.compile(node.this)

    def _literal(self, node: exp.Literal) -> Expr:
        text = str(node.this)
        if node.is_string:
            return constant(pa.scalar(text, pa.string()), node.sql())
        try:
            value = int(text)
        except ValueError:
            return constant(pa.scalar(float(text), pa.float64()), text)
        if not -(2**63) <= value < 2**63:
            raise self.error(node, f"the number {text} does not fit in a bigint", "write it as a float, e.g. 1e20")
        return constant(pa.scalar(value, pa.int64()), text)

    def _hex(self, node: exp.HexString) -> Expr:
        return constant(pa.scalar(int(str(node.this), 16), pa.int64()), node.sql())

    def _boolean(self, node: exp.Boolean) -> Expr:
        return constant(pa.scalar(bool(node.this), pa.bool_()), node.sql())

    def _null(self, node: exp.Null) -> Expr:
        return constant(pa.scalar(None), "NULL")

    def _star(self, node: exp.Star) -> Expr:
        raise self.error(node, "'*' can only stand alone in SELECT or in count(*)", "name the columns you need")

    # columns and nested fields
    def _column_node(self, node: exp.Column) -> Expr:
        return self._path(node, [p.name for p in node.parts])

    def _dot(self, node: exp.Dot) -> Expr:
        parts: list[str] = []
        cur: exp.Expression = node
        while isinstance(cur, exp.Dot):
            parts.insert(0, cur.expression.name)
            cur = cur.this
        if not isinstance(cur, exp.Column):
            return self._struct_path(node, self.compile(cur), parts, cur.sql())
        return self._path(node, [p.name for p in cur.parts] + parts)

    def _arrow(self, node: exp.JSONExtract) -> Expr:  # a->b, eKuiper's field access
        target = node.expression
        name = target.name if isinstance(target, (exp.Column, exp.Identifier, exp.Literal)) else None
        if not name:
            raise self.error(node, f"'->' needs a field name on its right, got '{target.sql()}'", "write a->b")
        return self._struct_path(node, self.compile(node.this), [name], node.this.sql())

    def _path(self, node: exp.Expression, parts: list[str]) -> Expr:
        if self.sources is not None:
            return self._joined_path(node, parts)
        if len(parts) > 1 and parts[0] in self.table_names and (self.columns is None or parts[0] not in self.columns):
            parts = parts[1:]
        name, path = parts[0], parts[1:]
        # a SELECT alias, where the stream has no such column (on a schemaless stream: always)
        if len(parts) == 1 and name in self.aliases and (self.prefer_aliases or self.columns is None
                                                         or name not in self.columns):
            return self.aliases[name]
        if not self._hascolumn(name):
            raise self._unknowncolumn(node, name)
        if self.grouping and self.group is not None:
            self.group.columns.add(name)
        self.read.add(name)
        base = column(name, None if self.columns is None else self.columns[name], name)
        return self._struct_path(node, base, path, name) if path else base

    def _joined_path(self, node: exp.Expression, parts: list[str]) -> Expr:
        sources = self.sources
        assert sources is not None
        if len(parts) == 1 and parts[0] in self.aliases and (self.prefer_aliases or not any(
                cols is None or parts[0] in cols for cols in sources.values())):
            return self.aliases[parts[0]]
        source, parts = self.source_of(node, parts)
        cols = sources[source]
        name = parts[0]
        if cols is not None and name not in cols:
            best = closest(name, cols)
            raise self.error(node, f"unknown column '{name}' of {source} in {self.clause}",
                             f"{'did you mean ' + repr(best) + '? ' if best else ''}({source} has columns: "
                             f"{listing(cols)})")
        qualified = f"{source}.{name}"
        if self.grouping and self.group is not None:
            self.group.columns.add(qualified)
        base = column(qualified, None if cols is None else cols[name], ".".join([source, name]))
        return self._struct_path(node, base, parts[1:], qualified) if len(parts) > 1 else base

    def source_of(self, node: exp.Expression, parts: list[str]) -> tuple[str, list[str]]:
        """Which input of a JOIN a column reference reads, and the rest of its parts: the one
        it names (``t.id``), else the only one with that column, else the only schemaless one."""
        sources = self.sources
        assert sources is not None
        if len(parts) > 1 and parts[0] in sources:
            return parts[0], parts[1:]
        name = parts[0]
        having = [q for q, cols in sources.items() if cols is not None and name in cols]
        open_ = [q for q, cols in sources.items() if cols is None]
        if len(having) == 1 or (not having and len(open_) == 1):
            return (having or open_)[0], parts
        if not having and not open_:
            raise self.error(node, f"unknown column '{name}' in {self.clause}",
                             "the joined inputs have columns: " + "; ".join(
                                 f"{q}: {listing(cols or {})}" for q, cols in sources.items()))
        candidates = having or open_
        raise self.error(node, f"column '{name}' is ambiguous: it may be of {' or '.join(candidates)}",
                         f"qualify it: {candidates[0]}.{name}")

    def _hascolumn(self, name: str) -> bool:
        return self.columns is None or name in self.columns

    def _unknowncolumn(self, node: exp.Expression, name: str) -> SqlError:
        assert self.columns is not None
        hint = []
        best = closest(name, self.columns)
        if best and name not in self.select_aliases:
            hint.append(f"did you mean '{best}'?")
        if name in self.select_aliases:
            hint.append(f"'{name}' is an alias of SELECT, which {self.clause} cannot use; repeat the expression")
        columns = f"stream {self.stream_name} has columns: {listing(self.columns)}"
        hint.append(f"({columns})" if hint else columns)
        return self.error(node, f"unknown column '{name}' in {self.clause}", " ".join(hint))

    def _struct_path(self, node: exp.Expression, base: Expr, path: list[str], shown: str) -> Expr:
        t = base.type
        for step in path:
            if t is not None:
                if not pa.types.is_struct(t):
                    raise self.error(
                        node,
                        f"'{shown}' is {type_name(t)}, not a struct, so it has no field '{step}'",
                        "nested access (a.b) works on struct columns",
                    )
                if t.get_field_index(step) < 0:
                    fields = [t.field(i).name for i in range(t.num_fields)]
                    best = closest(step, fields)
                    raise self.error(
                        node,
                        f"struct '{shown}' has no field '{step}'",
                        f"{'did you mean ' + repr(best) + '? ' if best else ''}its fields: {listing(fields)}",
                    )
                t = t.field(t.get_field_index(step)).type
            shown = f"{shown}.{step}"
        inner = base.eval
        steps = list(path)

        def get(batch: pa.RecordBatch) -> Value:
            v = inner(batch)
            for s in steps:
                vt = v.type
                i = vt.get_field_index(s) if pa.types.is_struct(vt) else -1
                if i < 0:
                    return pa.nulls(len(v)) if not isinstance(v, pa.Scalar) else pa.scalar(None)
                v = pc.struct_field(v, [i])
            return v

        return Expr(get, t, sql=shown)

    def _bracket(self, node: exp.Bracket) -> Expr:
        base = self.compile(node.this)
        if len(node.expressions) != 1:
            raise self.error(node, f"'{node.sql()}' takes one index", "write arr[0]")
        index = self.compile(node.expressions[0])
        if not index.is_const or not pa.types.is_integer(index.const.type):
            raise self.error(
                node, f"the index in '{node.sql()}' must be a whole-number constant", "write arr[0] (0-based)"
            )
        i = int(index.const.as_py())
        if i < 0:
            raise self.error(node, f"negative index {i} in '{node.sql()}'", "indexes start at 0")
        t = base.type
        if t is not None and not (pa.types.is_list(t) or pa.types.is_large_list(t)):
            raise self.error(
                node, f"'{node.this.sql()}' is {type_name(t)}, not an array", "indexing (x[0]) works on array columns"
            )
        inner = base.eval
        return Expr(lambda b: fns.list_item(inner(b), i), None if t is None else t.value_type, sql=node.sql())


_HANDLERS: dict[type, Callable[[Compiler, Any], Expr]] = {
    exp.Paren: Compiler._paren,
    exp.Literal: Compiler._literal,
    exp.HexString: Compiler._hex,
    exp.Boolean: Compiler._boolean,
    exp.Null: Compiler._null,
    exp.Star: Compiler._star,
    exp.Column: Compiler._column_node,
    exp.Dot: Compiler._dot,
    exp.JSONExtract: Compiler._arrow,
    exp.Bracket: Compiler._bracket,
    exp.Not: Compiler._not,
    exp.Neg: Compiler._neg,
    exp.Is: Compiler._is,
    exp.Between: Compiler._between,
    exp.Like: Compiler._like,
    exp.In: Compiler._in,
    exp.Case: Compiler._case,
    exp.If: Compiler._if,
    exp.Anonymous: Compiler._function,
    exp.Cast: Compiler._cast_as,
    exp.CastToStrType: Compiler._cast_to_str,
    **{t: Compiler._binary for t in BINARY_OPERATORS},
}


__all__ = ["Compiler", "WindowBounds"]
