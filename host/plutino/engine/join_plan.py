"""Planning the JOINs of a rule: which inputs, joined how, on which keys.

eKuiper's joins, on Arrow batches:

- **stream JOIN table** (a table of kind ``scan`` or ``lookup``): each batch of the stream is
  joined with the table's rows as they are when the batch arrives; INNER or LEFT.
- **stream JOIN stream** within a window (``GROUP BY TUMBLINGWINDOW(ss, 10)``): the rows of
  both streams that fall in one window are joined when it closes; INNER, LEFT, RIGHT, FULL or
  CROSS.

Inputs are named by their alias or name (the *qualifier*); in the joined batches a column is
named ``"<qualifier>.<column>"`` (:meth:`.compiler.Compiler.source_of` resolves references).
ON is split into equalities of the two sides, which become the hash join's keys (vectorised:
each side's key expressions run once per batch), and the rest, which filters the joined rows
(INNER and CROSS only: for an outer join it would change which rows count as unmatched).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pyarrow as pa
from sqlglot import exp

from .compiler import Compiler
from .errors import SqlError
from .expr import Expr
from .hints import closest, listing
from .sql import position
from .streams import StreamDef

#: sqlglot's join sides and kinds -> the join's kind
_KINDS = {("LEFT", ""): "left", ("RIGHT", ""): "right", ("FULL", ""): "full", ("", "INNER"): "inner",
          ("", ""): "inner", ("", "CROSS"): "cross", ("LEFT", "OUTER"): "left", ("RIGHT", "OUTER"): "right",
          ("FULL", "OUTER"): "full"}
#: the column a stream-stream join's window rows carry: which input they came from
SIDE = "__side"


@dataclass(frozen=True)
class JoinInput:
    """A stream or table a rule reads, under the name its columns are qualified with."""

    name: str
    source: StreamDef

    @property
    def columns(self) -> dict | None:
        return None if self.source.schemaless else dict(self.source.fields)


@dataclass
class JoinSpec:
    """One JOIN: the rows so far (the left) with ``right``, on ``left_keys[i] = right_keys[i]``,
    then ``residual`` (the rest of ON)."""

    kind: str  # inner, left, right, full, cross
    right: JoinInput
    left_keys: list[Expr] = field(default_factory=list)
    right_keys: list[Expr] = field(default_factory=list)
    residual: Expr | None = None
    #: the right side's column when the only key is one (a lookup by a table's KEY uses its index)
    right_column: str | None = None


@dataclass
class JoinPlan:
    primary: JoinInput
    joins: list[JoinSpec]

    @property
    def inputs(self) -> list[JoinInput]:
        return [self.primary, *(j.right for j in self.joins)]

    @property
    def streams(self) -> list[JoinInput]:
        """The joined streams besides the primary (FROM) one: they feed the window too."""
        return [j.right for j in self.joins if not j.right.source.is_table]

    @property
    def tables(self) -> list[JoinInput]:
        return [j.right for j in self.joins if j.right.source.is_table]


def join_inputs(sql: str, select: exp.Select, streams: Mapping[str, StreamDef], primary: JoinInput) -> list[JoinInput]:
    """The inputs of the query's JOINs after the primary one, checked: known, named once."""
    inputs = [primary]
    for join in select.args.get("joins") or []:
        table = join.this
        if not isinstance(table, exp.Table):
            raise _error(sql, join, "JOIN must name a stream or a table", "write JOIN t ON s.id = t.id")
        name = table.name
        if name not in streams:
            best = closest(name, streams)
            raise _error(sql, table, f"unknown stream or table '{name}'",
                         f"{'did you mean ' + repr(best) + '? ' if best else ''}create it with CREATE TABLE {name} "
                         f"(...) WITH (...) (streams and tables: {listing(streams)})")
        qualifier = table.alias or name
        if any(i.name == qualifier for i in inputs):
            raise _error(sql, table, f"'{qualifier}' is joined twice under one name",
                         f"give each its own alias: JOIN {name} AS {name}2")
        inputs.append(JoinInput(qualifier, streams[name]))
    return inputs


def plan_joins(sql: str, select: exp.Select, c: Compiler, inputs: list[JoinInput], windowed: bool) -> JoinPlan:
    """Compile each JOIN's ON against the inputs (``c.sources`` set)."""
    specs = []
    for n, join in enumerate(select.args.get("joins") or []):
        right = inputs[n + 1]
        key = (str(join.args.get("side") or "").upper(), str(join.args.get("kind") or "").upper())
        kind = _KINDS.get(key)
        if kind is None:
            raise _error(sql, join, f"{' '.join(k for k in key if k)} JOIN is not supported",
                         "use INNER, LEFT, RIGHT, FULL or CROSS JOIN")
        if right.source.is_table and kind in ("right", "full"):
            raise _error(sql, join, f"a {kind.upper()} JOIN with table '{right.name}' would repeat its unmatched "
                         "rows with every event", "use INNER or LEFT JOIN with a table")
        if not right.source.is_table and not windowed:
            raise _error(sql, join, f"a JOIN of two streams ({inputs[0].name}, {right.name}) needs a window",
                         "add one: GROUP BY TUMBLINGWINDOW(ss, 10)")
        on = join.args.get("on")
        if kind == "cross":
            if on is not None:
                raise _error(sql, on, "CROSS JOIN takes no ON", "use INNER JOIN ... ON, or filter with WHERE")
            specs.append(JoinSpec(kind, right))
            continue
        if on is None:
            raise _error(sql, join, f"JOIN {right.name} has no ON", f"join on a key: ON {inputs[0].name}.id = "
                         f"{right.name}.id, or use CROSS JOIN")
        specs.append(_on(sql, c, kind, right, {i.name for i in inputs[:n + 1]}, on))
    return JoinPlan(inputs[0], specs)


def _on(sql: str, c: Compiler, kind: str, right: JoinInput, left_names: set[str], on: exp.Expression) -> JoinSpec:
    spec = JoinSpec(kind, right)
    rest: list[exp.Expression] = []
    for part in _conjuncts(on):
        if isinstance(part, exp.EQ):
            a, b = _sides(c, part.this), _sides(c, part.expression)
            if a and b and a <= left_names and b == {right.name}:
                spec.left_keys.append(c.row(part.this, "ON"))
                spec.right_keys.append(c.row(part.expression, "ON"))
                continue
            if a and b and b <= left_names and a == {right.name}:
                spec.left_keys.append(c.row(part.expression, "ON"))
                spec.right_keys.append(c.row(part.this, "ON"))
                continue
        rest.append(part)
    if len(spec.right_keys) == 1:
        for part in _conjuncts(on):
            for node in (part.this, part.expression) if isinstance(part, exp.EQ) else ():
                if isinstance(node, exp.Column) and _sides(c, node) == {right.name}:
                    spec.right_column = c.source_of(node, [p.name for p in node.parts])[1][0]
    if not spec.left_keys and kind != "inner":
        raise _error(sql, on, f"the ON of a {kind.upper()} JOIN needs an equality of the two sides",
                     f"e.g. ON {next(iter(left_names))}.id = {right.name}.id")
    if rest:
        if kind != "inner":
            raise _error(sql, rest[0], f"a {kind.upper()} JOIN can only join on equalities of the two sides",
                         "move the other conditions to WHERE")
        residual = rest[0]
        for more in rest[1:]:
            residual = exp.And(this=residual, expression=more)
        spec.residual = c.row(residual, "ON")
    for k in (*spec.left_keys, *spec.right_keys):
        if k.type is not None and not _hashable(k.type):
            raise _error(sql, on, f"cannot join on a {k.type} value", "join on numbers, strings or booleans")
    return spec


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


def _sides(c: Compiler, node: exp.Expression) -> set[str]:
    """The inputs whose columns ``node`` reads."""
    out = set()
    for col in node.find_all(exp.Column):
        out.add(c.source_of(col, [p.name for p in col.parts])[0])
    return out


def _hashable(t: pa.DataType) -> bool:
    return not (pa.types.is_nested(t) or pa.types.is_null(t))


def _error(sql: str, node: exp.Expression | None, problem: str, hint: str = "") -> SqlError:
    line, col = position(sql, node) if node is not None else (None, None)
    return SqlError(problem, line=line, col=col, hint=hint)


__all__ = ["JoinInput", "JoinPlan", "JoinSpec", "SIDE", "join_inputs", "plan_joins"]
