"""Planning a rule's SELECT: from sqlglot's tree to the parts the operators run.

:func:`plan_query` checks the whole statement against the stream and the functions and
returns a :class:`QueryPlan`: the WHERE predicate, the window, the aggregates and GROUP BY
keys, HAVING, ORDER BY, LIMIT and the output fields, all compiled. Every mistake surfaces
here, when the rule is created, as a :class:`~plutino.engine.errors.SqlError` with its place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pyarrow as pa
from sqlglot import exp

from . import functions as fns
from .calls import AggSpec, GroupContext
from .compiler import Compiler, WindowBounds
from .errors import SqlError
from .expr import Expr
from .hints import closest, listing
from .join_plan import JoinInput, JoinPlan, join_inputs, plan_joins
from .meta_functions import check_meta
from .plugin_functions import FunctionLookup, FunctionUse
from .sql import parse_select, position
from .sql_limits import nesting_guard
from .streams import StreamDef
from .types import type_name

#: Time units of window functions, in milliseconds (eKuiper's names).
UNITS_MS = {"dd": 86_400_000, "hh": 3_600_000, "mi": 60_000, "ss": 1000, "ms": 1}


@dataclass(frozen=True)
class WindowSpec:
    """A window of GROUP BY. Times in milliseconds; a count window counts rows.

    tumbling: ``size``; hopping: ``size`` every ``hop``; sliding: ``size`` back from each row;
    session: closes ``timeout`` after its last row or at the next multiple of ``size`` (the
    maximum duration); count: ``size`` rows every ``hop`` rows.
    """

    kind: str
    size: int
    hop: int = 0
    timeout: int = 0

    @property
    def is_time(self) -> bool:
        return self.kind != "count"


@dataclass
class OutputField:
    name: str
    expr: Expr


@dataclass
class QueryPlan:
    sql: str
    stream: StreamDef
    where: Expr | None
    window: WindowSpec | None
    grouped: bool  # one output row per group (aggregates in SELECT, or GROUP BY keys)
    dims: list[Expr]  # GROUP BY keys, row mode
    dim_slots: list[str]
    aggs: list[AggSpec]
    group: GroupContext | None
    having: Expr | None
    order: list[tuple[Expr, bool]]  # (key, descending)
    limit: int | None
    star: bool
    fields: list[OutputField]
    uses: list[FunctionUse]
    bounds: WindowBounds = field(default_factory=WindowBounds)
    #: aggregates only in HAVING/ORDER BY of a query that is not grouped: computed per window
    #: and given to every row, so the window's rows all pass or fail together (eKuiper's)
    spread: bool = False
    #: metadata keys the rule reads (meta(topic), mqtt(topic)): the source keeps them only then
    meta_keys: tuple[str, ...] = ()
    #: the JOINs (:mod:`.join_plan`); None for a query of one stream
    join: JoinPlan | None = None
    #: the stream's columns the query reads (what a schemaless stream's rows are checked for)
    columns_read: frozenset[str] = frozenset()

    @property
    def aggregate_uses(self) -> list[FunctionUse]:
        return [a.use for a in self.aggs if a.use is not None]


@nesting_guard
def plan_query(sql: str, streams: Mapping[str, StreamDef], lookup: FunctionLookup) -> QueryPlan:
    """Parse and check ``sql`` against the known ``streams`` and functions."""
    select = parse_select(sql)
    if select.args.get("distinct"):
        raise _error(sql, select, "SELECT DISTINCT is not supported", "group by the columns with a window instead")
    stream, alias = _source(sql, select, streams)
    group_by = select.args.get("group")
    window_node, dim_nodes = _split_group_by(sql, group_by)
    window = _window(sql, window_node) if window_node is not None else None

    columns = None if stream.schemaless else dict(stream.fields)
    inputs = join_inputs(sql, select, streams, JoinInput(alias or stream.name, stream)) if select.args.get(
        "joins") else None
    if inputs is not None:
        columns = None
    c = Compiler(sql, stream.name, columns, lookup, alias=alias, window=window is not None)
    if inputs is not None:
        c.sources = {i.name: i.columns for i in inputs}
    projections = list(select.expressions)
    c.select_aliases = {p.alias for p in projections if isinstance(p, exp.Alias)}

    where_node = select.args.get("where")
    where = c.row(where_node.this, "WHERE") if where_node is not None else None
    if (
        where is not None
        and where.type is not None
        and not (pa.types.is_boolean(where.type) or pa.types.is_null(where.type))
    ):
        assert where_node is not None
        raise _error(
            sql,
            where_node.this,
            f"WHERE must be a condition, got a {type_name(where.type)} value",
            "compare it, e.g. WHERE temperature > 20",
        )

    # aggregates first, so that group-mode expressions can refer to their results
    having_node = select.args.get("having")
    order_node = select.args.get("order")
    group = GroupContext()
    c.group = group
    for p in projections:
        c.collect_aggregates(p, "SELECT")
    select_aggs = len(group.aggs)
    if having_node is not None:
        c.collect_aggregates(having_node.this, "HAVING")
    if order_node is not None:
        for o in order_node.expressions:
            c.collect_aggregates(o.this, "ORDER BY")
    aggs = list(group.aggs.values())
    if (aggs or dim_nodes) and window is None:
        culprit = dim_nodes[0] if dim_nodes else _first_aggregate(c, projections, having_node, order_node)
        what = "GROUP BY needs" if dim_nodes else "aggregate functions need"
        raise _error(sql, culprit, f"{what} a window", "add one to GROUP BY, e.g. GROUP BY TUMBLINGWINDOW(ss, 10)")
    if having_node is not None and window is None:
        raise _error(sql, having_node.this, "HAVING needs GROUP BY with a window", "filter rows with WHERE instead")

    dims: list[Expr] = []
    dim_slots: list[str] = []
    dim_nodes = [_dealiased(d, projections, columns) for d in dim_nodes]
    for i, d in enumerate(dim_nodes):
        compiled = c.row(d, "GROUP BY")
        slot = f"__dim{i}"
        dims.append(compiled)
        dim_slots.append(slot)
        group.dims.append((d, slot, compiled.type))
    grouped = bool(select_aggs or dims)
    spread = bool(aggs) and not grouped
    if not aggs and not grouped:
        c.group = None

    compile_out = c.grouped if grouped else c.row
    compile_filter = c.grouped if grouped or spread else c.row  # HAVING, ORDER BY
    star = False
    fields: list[OutputField] = []
    names: dict[str, exp.Expression] = {}
    unnamed = 0
    for p in projections:
        if isinstance(p, exp.Star):
            star = True
            if grouped:
                group.all_columns = True
            continue
        node = p.this if isinstance(p, exp.Alias) else p
        compiled = compile_out(node, "SELECT")
        if isinstance(p, exp.Alias):
            name = p.alias
        elif isinstance(node, exp.Column):
            name = node.name
        elif isinstance(node, (exp.Dot, exp.JSONExtract)):
            name = node.expression.name
        elif isinstance(node, exp.Anonymous):
            name = str(node.this)
        else:
            name = f"kuiper_field_{unnamed}"
            unnamed += 1
        if name in names:
            raise _error(
                sql,
                p,
                f"two SELECT fields are named '{name}'",
                f"give one of them another name: {node.sql()} AS {name}_2",
            )
        names[name] = p
        fields.append(OutputField(name, compiled))
    c.aliases = {f.name: f.expr for f in fields}

    having = None
    if having_node is not None:
        having = compile_filter(having_node.this, "HAVING")
        if having.type is not None and not (pa.types.is_boolean(having.type) or pa.types.is_null(having.type)):
            raise _error(
                sql,
                having_node.this,
                f"HAVING must be a condition, got a {type_name(having.type)} value",
                "compare it, e.g. HAVING count(*) > 2",
            )
    order: list[tuple[Expr, bool]] = []
    if order_node is not None:
        c.prefer_aliases = True
        for o in order_node.expressions:
            order.append((compile_filter(o.this, "ORDER BY"), bool(o.args.get("desc"))))
        c.prefer_aliases = False
    limit = _limit(sql, select)
    join = plan_joins(sql, select, c, inputs, window is not None) if inputs is not None else None
    return QueryPlan(
        sql=sql,
        stream=stream,
        where=where,
        window=window,
        grouped=grouped,
        dims=dims,
        dim_slots=dim_slots,
        aggs=aggs,
        group=group if grouped or spread else None,
        having=having,
        order=order,
        limit=limit,
        star=star,
        fields=fields,
        uses=c.uses,
        bounds=c.bounds,
        spread=spread,
        meta_keys=check_meta(sql, stream, getattr(c, "meta_keys", {})),
        join=join,
        columns_read=frozenset(c.read),
    )


def _error(sql: str, node: exp.Expression | None, problem: str, hint: str = "") -> SqlError:
    line, col = position(sql, node) if node is not None else (None, None)
    return SqlError(problem, line=line, col=col, hint=hint)


def _source(sql: str, select: exp.Select, streams: Mapping[str, StreamDef]) -> tuple[StreamDef, str | None]:
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is None:
        raise _error(sql, select, "the SELECT has no FROM", "name the stream: SELECT ... FROM demo")
    table = from_.this
    if not isinstance(table, exp.Table) or from_.expressions:
        raise _error(sql, from_, "FROM must name one stream", "write FROM demo")
    name = table.name
    if name not in streams:
        best = closest(name, streams)
        guess = f"did you mean '{best}'? " if best else ""
        raise _error(
            sql,
            table,
            f"unknown stream '{name}'",
            f"{guess}create it with CREATE STREAM {name} (...) WITH (...) (streams: {listing(streams)})",
        )
    if streams[name].is_table:
        raise _error(sql, table, f"'{name}' is a table, which a rule reads only through a JOIN",
                     f"read a stream and join the table: SELECT ... FROM <stream> JOIN {name} ON ...")
    return streams[name], table.alias or None


def _dealiased(node: exp.Expression, projections: list[exp.Expression],
               columns: Mapping[str, pa.DataType] | None) -> exp.Expression:
    """A GROUP BY key that names a SELECT alias (``SELECT a % 4 AS k ... GROUP BY k``) is the
    aliased expression, unless the stream has a column of that name; on a schemaless stream,
    whose columns are not known, the alias wins."""
    if not isinstance(node, exp.Column) or node.table:
        return node
    if columns is not None and node.name in columns:
        return node
    for p in projections:
        if isinstance(p, exp.Alias) and p.alias == node.name:
            return p.this
    return node


def _is_window_call(node: exp.Expression) -> bool:
    return isinstance(node, exp.Anonymous) and str(node.this).lower() in fns.WINDOW_FUNCTIONS


def _split_group_by(sql: str, group_by: exp.Group | None) -> tuple[exp.Anonymous | None, list[exp.Expression]]:
    if group_by is None:
        return None, []
    window = None
    dims = []
    for node in group_by.expressions:
        if _is_window_call(node):
            if window is not None:
                raise _error(sql, node, "GROUP BY has two windows", "keep one window function")
            window = node
            continue
        for sub in node.walk():
            if _is_window_call(sub):
                raise _error(
                    sql,
                    sub,
                    f"{str(sub.this).upper()}() must stand alone in GROUP BY",
                    "write GROUP BY key, TUMBLINGWINDOW(ss, 10)",
                )
        dims.append(node)
    return window, dims


def _window(sql: str, node: exp.Anonymous) -> WindowSpec:
    name = str(node.this).lower()
    args = list(node.expressions)
    usage = {
        "tumblingwindow": "TUMBLINGWINDOW(ss, 10)",
        "hoppingwindow": "HOPPINGWINDOW(ss, 10, 5)",
        "slidingwindow": "SLIDINGWINDOW(ss, 10)",
        "sessionwindow": "SESSIONWINDOW(mi, 2, 1) (unit, maximum duration, timeout)",
        "countwindow": "COUNTWINDOW(5) or COUNTWINDOW(5, 1)",
    }[name]
    shown = name.upper()

    def number(i: int, what: str) -> int:
        a = args[i]
        if not (isinstance(a, exp.Literal) and not a.is_string and str(a.this).isdigit() and int(str(a.this)) > 0):
            raise _error(
                sql, a, f"the {what} of {shown}() must be a whole number > 0, got '{a.sql()}'", f"write {usage}"
            )
        return int(str(a.this))

    if name == "countwindow":
        if len(args) not in (1, 2):
            raise _error(sql, node, f"{shown}() takes 1 or 2 arguments, got {len(args)}", f"write {usage}")
        size = number(0, "size")
        hop = number(1, "hop") if len(args) == 2 else size
        if hop > size:
            raise _error(
                sql,
                args[1],
                f"the hop of {shown}() ({hop}) is larger than its size ({size})",
                "a count window is emitted every hop rows with the last size rows; use hop <= size",
            )
        return WindowSpec("count", size, hop)
    wanted = {"tumblingwindow": 2, "hoppingwindow": 3, "slidingwindow": 2, "sessionwindow": 3}[name]
    if name == "slidingwindow" and len(args) == 3:
        raise _error(sql, args[2], "the delay argument of SLIDINGWINDOW() is not supported", f"write {usage}")
    if len(args) != wanted:
        raise _error(sql, node, f"{shown}() takes {wanted} arguments, got {len(args)}", f"write {usage}")
    unit_node = args[0]
    unit = unit_node.name.lower() if isinstance(unit_node, (exp.Column, exp.Identifier, exp.Var)) else ""
    if unit not in UNITS_MS:
        raise _error(
            sql,
            unit_node,
            f"unknown time unit '{unit_node.sql()}' in {shown}()",
            f"use one of DD, HH, MI, SS, MS; write {usage}",
        )
    ms = UNITS_MS[unit]
    if name == "tumblingwindow":
        return WindowSpec("tumbling", number(1, "size") * ms)
    if name == "hoppingwindow":
        return WindowSpec("hopping", number(1, "size") * ms, hop=number(2, "hop") * ms)
    if name == "slidingwindow":
        return WindowSpec("sliding", number(1, "size") * ms)
    return WindowSpec("session", number(1, "maximum duration") * ms, timeout=number(2, "timeout") * ms)


def _first_aggregate(c: Compiler, *roots: object) -> exp.Expression | None:
    for root in roots:
        nodes = root if isinstance(root, list) else [root]
        for n in nodes:
            if isinstance(n, exp.Expression):
                for sub in n.walk():
                    if isinstance(sub, exp.Expression) and c.is_aggregate_call(sub):
                        return sub
    return None


def _limit(sql: str, select: exp.Select) -> int | None:
    node = select.args.get("limit")
    if node is None:
        return None
    value = node.expression
    if not (isinstance(value, exp.Literal) and str(value.this).isdigit()):
        raise _error(sql, node, f"LIMIT must be a whole number, got '{value.sql()}'", "write LIMIT 10")
    return int(str(value.this))


__all__ = ["OutputField", "QueryPlan", "UNITS_MS", "WindowSpec", "plan_query"]
