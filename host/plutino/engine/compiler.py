"""Compiling SQL expressions into closures over pyarrow.compute, checked once at rule creation.

Each sqlglot expression becomes an :class:`Expr`: a closure that takes a RecordBatch and
returns an Arrow array (or a scalar, which operators broadcast), plus the result type when it
is known. Everything that can be decided before data arrives is decided here: columns are
resolved against the stream's schema, constants are folded into pre-built scalars, function
names are resolved (built-ins first, then plugins) and argument counts and types checked. A
type error is found by running the pyarrow kernel once on empty arrays of the argument
types, so the check and the execution can never disagree.

An expression is compiled in one of two modes. *Row* mode reads the stream's rows. *Group*
mode reads the grouped batch a window produces (one row per group): an aggregate call there
reads the column the aggregation step computed for it, a GROUP BY expression reads its key,
and a plain column reads the value of the group's first row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol, Sequence

import pyarrow as pa
import pyarrow.compute as pc
from plutino_contract.protocols import Context, Function, FunctionInstance
from sqlglot import exp

from . import functions as fns
from .errors import SqlError
from .hints import closest, listing
from .sql import position
from .types import is_numeric, type_name

Value = Any  # pa.Array | pa.Scalar
Eval = Callable[[pa.RecordBatch], Value]


class Expr:
    """A compiled expression: ``eval(batch)``, its result ``type`` (None: known at run time)
    and, for a constant, its pre-built scalar ``const``."""

    __slots__ = ("eval", "type", "const", "sql")

    def __init__(self, fn: Eval, type_: pa.DataType | None, const: pa.Scalar | None = None, sql: str = "") -> None:
        self.eval = fn
        self.type = type_
        self.const = const
        self.sql = sql

    @property
    def is_const(self) -> bool:
        return self.const is not None


def constant(value: pa.Scalar, sql: str = "") -> Expr:
    return Expr(lambda batch: value, value.type, value, sql)


class FunctionLookup(Protocol):
    """Where plugin functions come from (the registry, through an adapter)."""

    def lookup(self, name: str) -> "tuple[Function, str] | None":
        """The function called ``name`` (case-insensitive) and its plugin's name, or None."""

    def names(self) -> Iterable[str]:
        """Every plugin function name, for "did you mean" hints."""


class NoPlugins:
    """A lookup with no plugin functions (built-ins only)."""

    def lookup(self, name: str) -> "tuple[Function, str] | None":
        return None

    def names(self) -> Iterable[str]:
        return ()


@dataclass
class FunctionUse:
    """One use of a plugin function in a rule: its instance lives from rule start to stop.

    ``calls`` counts calls into the plugin (one per batch for a scalar function, one per
    window for an aggregate), shown in the rule status."""

    function: Function
    plugin: str
    name: str
    index: int
    calls: int = 0
    errors: int = 0
    instance: FunctionInstance | None = None

    def open(self, rule_id: str, op_id: str) -> None:
        self.calls = 0
        self.errors = 0
        self.instance = self.function.create(Context(plugin_name=self.plugin, rule_id=rule_id, op_id=op_id))

    def close(self) -> None:
        instance, self.instance = self.instance, None
        if instance is not None:
            try:
                instance.close()
            except Exception:  # close() must not raise; a broken plugin must not stop the stop
                pass

    def _ready(self) -> FunctionInstance:
        if self.instance is None:
            raise RuntimeError(f"function '{self.name}' used before the rule started")
        return self.instance

    def call(self, args: list[pa.Array], length: int) -> pa.Array:
        self.calls += 1
        try:
            return self._ready().call(args, length)
        except Exception:
            self.errors += 1
            raise

    def aggregate(self, args: list[pa.Array], length: int, group_ids: pa.Array | None, ngroups: int) -> pa.Array:
        self.calls += 1
        try:
            return self._ready().aggregate(args, length, group_ids, ngroups)
        except Exception:
            self.errors += 1
            raise


@dataclass
class AggSpec:
    """An aggregate call found in SELECT, HAVING or ORDER BY, computed once per window."""

    slot: str                    # the grouped batch's column holding the result
    name: str                    # as written, lower case
    args: list[Expr]             # row mode: evaluated over the window's rows
    star: bool = False           # count(*)
    builtin: fns.Builtin | None = None
    use: FunctionUse | None = None
    type: pa.DataType | None = None


class WindowBounds:
    """The window being emitted: read by window_start() and window_end() (ms since epoch)."""

    __slots__ = ("start", "end")

    def __init__(self) -> None:
        self.start: int | None = None
        self.end: int | None = None


@dataclass
class GroupContext:
    aggs: dict[int, AggSpec] = field(default_factory=dict)       # id(sqlglot node) -> spec
    dims: list[tuple[exp.Expression, str, pa.DataType | None]] = field(default_factory=list)
    columns: set[str] = field(default_factory=set)               # raw columns read per group
    all_columns: bool = False                                    # SELECT * in a grouped query


class Compiler:
    """Compiles expressions of one query against one stream."""

    def __init__(self, sql: str, stream_name: str, columns: dict[str, pa.DataType] | None,
                 lookup: FunctionLookup, *, alias: str | None = None, window: bool = False) -> None:
        self.sql = sql
        self.stream_name = stream_name
        self.table_names = {stream_name} | ({alias} if alias else set())
        self.columns = columns           # None: schemaless, any name is accepted
        self.lookup = lookup
        self.window = window
        self.bounds = WindowBounds()
        self.uses: list[FunctionUse] = []
        self.group: GroupContext | None = None
        self.grouping = False            # compiling in group mode
        self.clause = "SELECT"
        self.aliases: dict[str, Expr] = {}
        self.prefer_aliases = False
        self.select_aliases: set[str] = set()

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

    # -- aggregates ----------------------------------------------------------------------------
    def is_aggregate_call(self, node: exp.Expression) -> bool:
        if not isinstance(node, exp.Anonymous):
            return False
        name = str(node.this).lower()
        b = fns.builtin(name)
        if b is not None:
            return b.aggregate
        found = self.lookup.lookup(name)
        return bool(found and found[0].aggregate)

    def collect_aggregates(self, node: exp.Expression, clause: str) -> None:
        """Register every aggregate call in ``node`` (not descending into their arguments)."""
        if self.is_aggregate_call(node):
            assert self.group is not None
            if id(node) not in self.group.aggs:
                self.group.aggs[id(node)] = self._agg_spec(node, clause)
            return
        for child in node.iter_expressions():
            self.collect_aggregates(child, clause)

    def _agg_spec(self, node: exp.Anonymous, clause: str) -> AggSpec:
        assert self.group is not None
        name = str(node.this).lower()
        slot = f"__agg{len(self.group.aggs)}"
        args = list(node.expressions)
        b = fns.builtin(name)
        if any(isinstance(a, exp.Distinct) for a in args):
            raise self.error(node, f"{name}(DISTINCT ...) is not supported", "aggregate the values without DISTINCT")
        if b is not None:
            self._check_count(node, name, len(args), b.min_args, b.max_args, b.usage)
            if len(args) == 1 and isinstance(args[0], exp.Star):
                if name != "count":
                    raise self.error(node, f"{name}(*) is not allowed", f"only count(*) takes '*'; write {b.usage}")
                return AggSpec(slot, name, [], star=True, builtin=b, type=pa.int64())
            compiled = [self.row(a, f"the argument of {name}()") for a in args]
            return AggSpec(slot, name, compiled, builtin=b, type=self._agg_type(node, b, compiled))
        function, plugin = self.lookup.lookup(name)  # type: ignore[misc]
        self._check_count(node, name, len(args), function.min_args, function.max_args, f"{name}(...)")
        compiled = [self.row(a, f"the argument of {name}()") for a in args]
        use = FunctionUse(function, plugin, name, len(self.uses))
        self.uses.append(use)
        return AggSpec(slot, name, compiled, use=use, type=self._validate(node, name, function, compiled))

    def _agg_type(self, node: exp.Expression, b: fns.Builtin, args: list[Expr]) -> pa.DataType | None:
        t = args[0].type
        if t is None:
            return None
        try:
            table = pa.table({"k": pa.array([], pa.int8()), "a": pa.array([], t)})
            spec = ("a", b.agg, b.agg_options) if b.agg_options is not None else ("a", b.agg)
            return table.group_by("k").aggregate([spec]).schema.field(f"a_{b.agg}").type
        except (pa.ArrowException, TypeError, ValueError, KeyError) as exc:
            raise self.error(node, f"{b.name}() cannot aggregate {type_name(t)} values",
                             f"cast the argument, e.g. {b.name}(cast(x, \"float\"))") from None

    # -- the expression walk -------------------------------------------------------------------
    def compile(self, node: exp.Expression) -> Expr:
        if self.grouping and self.group is not None:
            for dim_node, slot, dim_type in self.group.dims:
                if node == dim_node:
                    return _column(slot, dim_type, node.sql())
            if self.is_aggregate_call(node):
                spec = self.group.aggs.get(id(node))
                if spec is None:  # pragma: no cover - collect_aggregates saw every clause
                    raise self.error(node, f"aggregate {node.sql()} was not planned")
                return _column(spec.slot, spec.type, node.sql())
        handler = _HANDLERS.get(type(node))
        if handler is None:
            raise self.error(node, f"unsupported expression '{node.sql()}'",
                             "see docs/engine.md for the SQL Plutino runs")
        return handler(self, node)

    def _paren(self, node: exp.Paren) -> Expr:
        return self.compile(node.this)

    def _literal(self, node: exp.Literal) -> Expr:
        text = str(node.this)
        if node.is_string:
            return constant(pa.scalar(text, pa.string()), node.sql())
        try:
            return constant(pa.scalar(int(text), pa.int64()), text)
        except ValueError:
            return constant(pa.scalar(float(text), pa.float64()), text)

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
        if len(parts) > 1 and parts[0] in self.table_names and (self.columns is None or parts[0] not in self.columns):
            parts = parts[1:]
        name, path = parts[0], parts[1:]
        if len(parts) == 1 and name in self.aliases and (self.prefer_aliases or not self._has_column(name)):
            return self.aliases[name]
        if not self._has_column(name):
            raise self._unknown_column(node, name)
        if self.grouping and self.group is not None:
            self.group.columns.add(name)
        base = _column(name, None if self.columns is None else self.columns[name], name)
        return self._struct_path(node, base, path, name) if path else base

    def _has_column(self, name: str) -> bool:
        return self.columns is None or name in self.columns

    def _unknown_column(self, node: exp.Expression, name: str) -> SqlError:
        assert self.columns is not None
        hint = []
        best = closest(name, self.columns)
        if best and name not in self.select_aliases:
            hint.append(f"did you mean '{best}'?")
        if name in self.select_aliases:
            hint.append(f"'{name}' is an alias of SELECT, which {self.clause} cannot use; repeat the expression")
        hint.append(f"(stream {self.stream_name} has columns: {listing(self.columns)})")
        return self.error(node, f"unknown column '{name}' in {self.clause}", " ".join(hint))

    def _struct_path(self, node: exp.Expression, base: Expr, path: list[str], shown: str) -> Expr:
        t = base.type
        for step in path:
            if t is not None:
                if not pa.types.is_struct(t):
                    raise self.error(node, f"'{shown}' is {type_name(t)}, not a struct, so it has no field '{step}'",
                                     "nested access (a.b) works on struct columns")
                if t.get_field_index(step) < 0:
                    fields = [t.field(i).name for i in range(t.num_fields)]
                    best = closest(step, fields)
                    raise self.error(node, f"struct '{shown}' has no field '{step}'",
                                     f"{'did you mean ' + repr(best) + '? ' if best else ''}its fields: {listing(fields)}")
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
            raise self.error(node, f"the index in '{node.sql()}' must be a whole-number constant", "write arr[0] (0-based)")
        i = int(index.const.as_py())
        if i < 0:
            raise self.error(node, f"negative index {i} in '{node.sql()}'", "indexes start at 0")
        t = base.type
        if t is not None and not (pa.types.is_list(t) or pa.types.is_large_list(t)):
            raise self.error(node, f"'{node.this.sql()}' is {type_name(t)}, not an array", "indexing (x[0]) works on array columns")
        inner = base.eval
        return Expr(lambda b: fns.list_item(inner(b), i), None if t is None else t.value_type, sql=node.sql())

    # operators
    def _binary(self, node: exp.Binary) -> Expr:
        op, fn = _BINARY[type(node)]
        return self.apply(node, f"'{op}'", lambda v, n: fn(v[0], v[1]), [self.compile(node.this), self.compile(node.expression)])

    def _not(self, node: exp.Not) -> Expr:
        return self.apply(node, "NOT", lambda v, n: pc.invert(v[0]), [self.compile(node.this)])

    def _neg(self, node: exp.Neg) -> Expr:
        return self.apply(node, "'-'", lambda v, n: pc.negate(v[0]), [self.compile(node.this)])

    def _is(self, node: exp.Is) -> Expr:
        target = node.expression
        arg = self.compile(node.this)
        if isinstance(target, exp.Null):
            return self.apply(node, "IS NULL", lambda v, n: pc.is_null(v[0]), [arg])
        if isinstance(target, exp.Boolean):
            want = bool(target.this)
            return self.apply(node, f"IS {'TRUE' if want else 'FALSE'}",
                              lambda v, n: pc.fill_null(v[0] if want else pc.invert(v[0]), False), [arg])
        raise self.error(node, f"unsupported IS test '{node.sql()}'", "use IS NULL, IS NOT NULL, IS TRUE or IS FALSE")

    def _between(self, node: exp.Between) -> Expr:
        args = [self.compile(node.this), self.compile(node.args["low"]), self.compile(node.args["high"])]
        return self.apply(node, "BETWEEN", lambda v, n: pc.and_kleene(pc.greater_equal(v[0], v[1]), pc.less_equal(v[0], v[2])), args)

    def _like(self, node: exp.Like) -> Expr:
        pattern = self.compile(node.expression)
        if not pattern.is_const or not pa.types.is_string(pattern.const.type):
            raise self.error(node.expression, "the pattern of LIKE must be a string constant", "write s LIKE \"abc%\"")
        text = pattern.const.as_py()
        negate = bool(node.args.get("negate"))
        op = "NOT LIKE" if negate else "LIKE"
        if negate:
            return self.apply(node, op, lambda v, n: pc.invert(pc.match_like(v[0], text)), [self.compile(node.this)])
        return self.apply(node, op, lambda v, n: pc.match_like(v[0], text), [self.compile(node.this)])

    def _in(self, node: exp.In) -> Expr:
        if node.args.get("query") is not None or node.args.get("unnest") is not None:
            raise self.error(node, "IN with a subquery is not supported", "list the values: x IN (1, 2, 3)")
        left = self.compile(node.this)
        items = [self.compile(e) for e in node.expressions]
        if all(i.is_const for i in items):
            values = [i.const.as_py() for i in items]
            try:
                value_set = pa.array(values)
                if left.type is not None and value_set.type != left.type and not pa.types.is_null(left.type):
                    value_set = value_set.cast(left.type)
            except (pa.ArrowException, TypeError, ValueError) as exc:
                shown = "?" if left.type is None else type_name(left.type)
                raise self.error(node, f"the IN list does not match {shown} values",
                                 f"{_short(exc)}; list values of the column's type") from None
            return self.apply(node, "IN", lambda v, n: pc.is_in(v[0], value_set=value_set), [left])
        cond: Callable[[list[Value], int], Value]

        def cond(v: list[Value], n: int) -> Value:
            out = pc.equal(v[0], v[1])
            for other in v[2:]:
                out = pc.or_kleene(out, pc.equal(v[0], other))
            return out
        return self.apply(node, "IN", cond, [left, *items])

    def _case(self, node: exp.Case) -> Expr:
        subject = node.args.get("this")
        conds: list[Expr] = []
        values: list[Expr] = []
        for branch in node.args.get("ifs") or []:
            when = self.compile(branch.this)
            if subject is not None:
                when = self.apply(branch, "'='", lambda v, n: pc.equal(v[0], v[1]), [self.compile(subject), when])
            conds.append(when)
            values.append(self.compile(branch.args["true"]))
        default_node = node.args.get("default")
        default = self.compile(default_node) if default_node is not None else constant(pa.scalar(None))
        return self._choose(node, conds, values, default)

    def _if(self, node: exp.If) -> Expr:
        false = node.args.get("false")
        return self._choose(node, [self.compile(node.this)], [self.compile(node.args["true"])],
                            self.compile(false) if false is not None else constant(pa.scalar(None)))

    def _choose(self, node: exp.Expression, conds: list[Expr], values: list[Expr], default: Expr) -> Expr:
        for c in conds:
            if c.type is not None and not pa.types.is_boolean(c.type) and not pa.types.is_null(c.type):
                raise self.error(node, f"a WHEN condition is {type_name(c.type)}, not boolean", "write a comparison, e.g. WHEN a > 1")
        branch_types = [v.type for v in (*values, default)]
        target = None
        if all(t is not None for t in branch_types):
            target = common_type(branch_types)
            if target is None:
                shown = ", ".join(sorted({type_name(t) for t in branch_types if not pa.types.is_null(t)}))
                raise self.error(node, f"the branches of CASE have different types ({shown})", "cast them to one type with cast(x, \"string\")")
        cond_evals = [c.eval for c in conds]
        value_evals = [v.eval for v in (*values, default)]
        names = [f"c{i}" for i in range(len(conds))]

        def choose(batch: pa.RecordBatch) -> Value:
            n = batch.num_rows
            masks = [broadcast(pc.fill_null(f(batch), False), n) for f in cond_evals]
            outs = [f(batch) for f in value_evals]
            t = target or common_type([o.type for o in outs]) or pa.string()
            outs = [o.cast(t) if o.type != t else o for o in outs]
            return pc.case_when(pc.make_struct(*masks, field_names=names), *outs)
        return Expr(choose, target, sql=node.sql())

    # functions
    def _function(self, node: exp.Anonymous) -> Expr:
        name = str(node.this).lower()
        args = list(node.expressions)
        if name in fns.WINDOW_FUNCTIONS:
            raise self.error(node, f"{name.upper()}() can only be used in GROUP BY", f"write GROUP BY {name.upper()}(...)")
        b = fns.builtin(name)
        if b is None:
            found = self.lookup.lookup(name)
            if found is None:
                raise self._unknown_function(node, name)
            return self._plugin_call(node, name, args, *found)
        self._check_count(node, name, len(args), b.min_args, b.max_args, b.usage)
        if b.aggregate:
            raise self._misplaced_aggregate(node, name)
        if b.window_only:
            if not self.window:
                raise self.error(node, f"{name}() needs a window", "add one to GROUP BY, e.g. GROUP BY TUMBLINGWINDOW(ss, 10)")
            bounds, attr = self.bounds, name.split("_")[1]
            return Expr(lambda batch: pa.scalar(getattr(bounds, attr), pa.int64()), pa.int64(), sql=node.sql())
        for a in args:
            if isinstance(a, exp.Star):
                raise self.error(a, f"{name}() does not take '*'", f"write {b.usage}")
        compiled = [self.compile(a) for a in args]
        for i in b.const_args:
            if i < len(compiled) and not compiled[i].is_const:
                raise self.error(args[i], f"argument {i + 1} of {name}() must be a constant", f"write {b.usage}")
        self._check_builtin_constants(node, b, compiled)
        return self.apply(node, f"{name}()", b.impl, compiled, volatile=b.volatile, usage=b.usage)  # type: ignore[arg-type]

    def _check_builtin_constants(self, node: exp.Anonymous, b: fns.Builtin, args: list[Expr]) -> None:
        if b.name == "cast":
            wanted = str(args[1].const.as_py()).lower()
            if wanted not in fns.CAST_TYPES:
                best = closest(wanted, fns.CAST_TYPES)
                raise self.error(node.expressions[1], f"cast() cannot make '{wanted}'",
                                 f"{'did you mean ' + repr(best) + '? ' if best else ''}types: {', '.join(fns.CAST_TYPES)}")
        if b.name in ("json_path_query", "json_path_exists"):
            try:
                fns.parse_json_path(str(args[1].const.as_py()))
            except ValueError as exc:
                raise self.error(node.expressions[1], f"bad JSON path in {b.name}()", str(exc)) from None

    def _unknown_function(self, node: exp.Expression, name: str) -> SqlError:
        known = [*fns.BUILTIN_NAMES, *self.lookup.names()]
        best = closest(name, known)
        guess = f"did you mean '{best}'?" if best else "no built-in or installed plugin has it; install the plugin that provides it"
        return self.error(node, f"unknown function '{name}'", f"{guess} (built-in and plugin functions: see GET /plugins/udfs)")

    def _misplaced_aggregate(self, node: exp.Expression, name: str) -> SqlError:
        if self.clause == "WHERE":
            return self.error(node, f"aggregate function '{name}' cannot be used in WHERE", "filter groups with HAVING instead")
        if self.clause.startswith("the argument of"):
            return self.error(node, f"aggregate function '{name}' cannot be nested in {self.clause.split('of ')[1]}",
                              "aggregate the plain values")
        if self.clause == "GROUP BY":
            return self.error(node, f"aggregate function '{name}' cannot be used in GROUP BY", "group by columns or expressions of columns")
        return self.error(node, f"aggregate function '{name}' needs a window",
                          "add one to GROUP BY, e.g. GROUP BY TUMBLINGWINDOW(ss, 10)")

    def _check_count(self, node: exp.Expression, name: str, n: int, lo: int, hi: int, usage: str) -> None:
        if n < lo or (hi >= 0 and n > hi):
            raise self.error(node, f"function '{name}' takes {_count_words(lo, hi)}, got {n}", f"write {usage}")

    def _plugin_call(self, node: exp.Anonymous, name: str, args: list[exp.Expression], function: Function, plugin: str) -> Expr:
        self._check_count(node, name, len(args), function.min_args, function.max_args, f"{name}(...)")
        if function.aggregate:
            raise self._misplaced_aggregate(node, name)
        for a in args:
            if isinstance(a, exp.Star):
                raise self.error(a, f"{name}() does not take '*'", "pass columns or constants")
        compiled = [self.compile(a) for a in args]
        result_type = self._validate(node, name, function, compiled)
        use = FunctionUse(function, plugin, name, len(self.uses))
        self.uses.append(use)
        # constants cross the ABI as length-1 arrays, built once here
        prepared = [pa.repeat(a.const, 1) if a.is_const else None for a in compiled]
        evals = [a.eval for a in compiled]

        def call(batch: pa.RecordBatch) -> Value:
            arrays = [p if p is not None else as_array(f(batch)) for p, f in zip(prepared, evals)]
            return use.call(arrays, batch.num_rows)
        return Expr(call, result_type, sql=node.sql())

    def _validate(self, node: exp.Expression, name: str, function: Function, args: list[Expr]) -> pa.DataType | None:
        if any(a.type is None for a in args):
            return None  # a schemaless column: the plugin validates when the first batch comes
        arg_types: list[Any] = [pa.field("const", a.type, nullable=False) if a.is_const else a.type for a in args]
        try:
            return function.validate(arg_types)
        except Exception as exc:  # ValueError by the Protocol; a broken plugin may raise others
            shown = ", ".join(type_name(a.type) for a in args)  # type: ignore[arg-type]
            raise self.error(node, f"function '{name}' does not accept ({shown})", str(exc)) from None

    # -- applying pyarrow kernels ------------------------------------------------------------------
    def apply(self, node: exp.Expression, op: str, fn: Callable[[list[Value], int], Value], args: list[Expr],
              *, volatile: bool = False, usage: str = "") -> Expr:
        """Wrap ``fn(values, length)`` over compiled ``args``: fold it when every argument is
        constant, else check it on empty arrays of the argument types and close over it."""
        shown = node.sql()
        if all(a.is_const for a in args) and not volatile:
            try:
                value = fn([a.const for a in args], 1)
            except (pa.ArrowException, TypeError, ValueError, KeyError, ZeroDivisionError) as exc:
                raise self._kernel_error(node, op, args, exc, usage) from None
            if isinstance(value, pa.Scalar):
                return constant(value, shown)
        result_type = self._trial(node, op, fn, args, usage)
        evals = [a.eval for a in args]
        if len(evals) == 1:
            (e0,) = evals
            return Expr(lambda b: fn([e0(b)], b.num_rows), result_type, sql=shown)
        if len(evals) == 2:
            e0, e1 = evals
            return Expr(lambda b: fn([e0(b), e1(b)], b.num_rows), result_type, sql=shown)
        return Expr(lambda b: fn([e(b) for e in evals], b.num_rows), result_type, sql=shown)

    def _trial(self, node: exp.Expression, op: str, fn: Callable[[list[Value], int], Value], args: list[Expr],
               usage: str) -> pa.DataType | None:
        if any(a.type is None for a in args):
            return None
        # one null row: kernels check their options (a regex, a format) even then, and an
        # empty array would let them skip that
        inputs = [a.const if a.is_const else pa.nulls(1, a.type) for a in args]
        try:
            return fn(inputs, 1).type
        except (pa.ArrowException, TypeError, ValueError, KeyError, ZeroDivisionError) as exc:
            raise self._kernel_error(node, op, args, exc, usage) from None

    def _kernel_error(self, node: exp.Expression, op: str, args: list[Expr], exc: Exception, usage: str) -> SqlError:
        shown = " and ".join("unknown" if a.type is None else type_name(a.type) for a in args)
        if isinstance(exc, pa.ArrowNotImplementedError) or "no kernel" in str(exc):
            hint = "cast a value to a matching type, e.g. cast(x, \"float\")"
            if usage:
                hint = f"write {usage}; {hint}"
            return self.error(node, f"cannot apply {op} to {shown}", hint)
        return self.error(node, f"cannot compute {op} of {shown}", _short(exc) + (f"; write {usage}" if usage else ""))


def _count_words(lo: int, hi: int) -> str:
    def n(k: int) -> str:
        return f"{k} argument" + ("" if k == 1 else "s")
    if hi < 0:
        return f"at least {n(lo)}"
    if lo == hi:
        return n(lo)
    return f"{lo} to {n(hi)}"


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _column(name: str, type_: pa.DataType | None, shown: str) -> Expr:
    def get(batch: pa.RecordBatch) -> Value:
        i = batch.schema.get_field_index(name)
        return batch.column(i) if i >= 0 else pa.nulls(batch.num_rows)
    return Expr(get, type_, sql=shown)


def broadcast(value: Value, length: int) -> pa.Array:
    """An array of ``length`` rows: scalars repeated, chunked arrays combined."""
    if isinstance(value, pa.Scalar):
        return pa.repeat(value, length)
    if isinstance(value, pa.ChunkedArray):
        return value.combine_chunks()
    return value


def as_array(value: Value) -> pa.Array:
    """A value as an array; a scalar becomes a length-1 array (how constants cross the ABI)."""
    if isinstance(value, pa.Scalar):
        return pa.repeat(value, 1)
    if isinstance(value, pa.ChunkedArray):
        return value.combine_chunks()
    return value


def common_type(types: Sequence[pa.DataType]) -> pa.DataType | None:
    """The one type CASE branches are cast to: equal types, or numbers widened; else None."""
    concrete = [t for t in types if not pa.types.is_null(t)]
    if not concrete:
        return pa.null()
    first = concrete[0]
    if all(t == first for t in concrete):
        return first
    if all(is_numeric(t) for t in concrete):
        return pa.float64() if any(pa.types.is_floating(t) for t in concrete) else pa.int64()
    return None


_BINARY: dict[type, tuple[str, Callable[[Value, Value], Value]]] = {
    exp.Add: ("+", pc.add),
    exp.Sub: ("-", pc.subtract),
    exp.Mul: ("*", pc.multiply),
    exp.Div: ("/", pc.divide),
    exp.Mod: ("%", lambda a, b: fns._mod([a, b], 0)),
    exp.EQ: ("=", pc.equal),
    exp.NEQ: ("!=", pc.not_equal),
    exp.GT: (">", pc.greater),
    exp.GTE: (">=", pc.greater_equal),
    exp.LT: ("<", pc.less),
    exp.LTE: ("<=", pc.less_equal),
    exp.And: ("AND", pc.and_kleene),
    exp.Or: ("OR", pc.or_kleene),
    exp.BitwiseAnd: ("&", pc.bit_wise_and),
    exp.BitwiseOr: ("|", pc.bit_wise_or),
    exp.BitwiseXor: ("^", pc.bit_wise_xor),
}

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
    **{t: Compiler._binary for t in _BINARY},
}


__all__ = [
    "AggSpec", "Compiler", "Expr", "FunctionLookup", "FunctionUse", "GroupContext", "NoPlugins",
    "WindowBounds", "as_array", "broadcast", "common_type", "constant",
]
