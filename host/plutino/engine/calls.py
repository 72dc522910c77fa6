"""Function calls in SQL: built-ins, plugin functions, casts and aggregates.

This half of the :class:`~plutino.engine.compiler.Compiler` resolves a call's name (built-ins
first, then plugins, case-insensitively), checks its argument count and types, and wraps the
pyarrow kernel or the plugin call in a closure. :meth:`Calls.apply` is where every kernel is
checked: folded when all its arguments are constants, otherwise run once on one null row of
the argument types, so that a type error is a SQL error at rule creation with its place.
Aggregate calls are collected first (:meth:`Calls.collect_aggregates`) and computed per window
by the aggregate operator; in group mode the compiler reads their results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pyarrow as pa
from sqlglot import exp

from plutino_contract.protocols import Function

from . import functions as fns
from .errors import SqlError
from .expr import Expr, Value, as_array, constant
from .hints import closest
from .meta_functions import meta_call
from .plugin_functions import FunctionLookup, FunctionUse
from .types import type_name


def _fold_once(use: FunctionUse, args: list[pa.Array]) -> Callable[[pa.RecordBatch], Value]:
    """A call with only constant arguments of a function that is not volatile
    (PLUTINO_FN_VOLATILE unset; a Python function says ``volatile = False``): the same
    arguments give the same result, so the plugin is called once per rule run, with one row,
    on the first batch, and that value is every row's after. A failed call is not kept: the
    next batch calls again. A function that does not say (no ``volatile`` attribute) is
    called for every batch."""
    folded: list[Any] = [None, None]  # [the instance it was computed by, the value]

    def call(batch: pa.RecordBatch) -> Value:
        if folded[0] is use.instance and use.instance is not None:
            return folded[1]
        value = use.call(args, 1)[0]
        folded[0], folded[1] = use.instance, value
        return value

    return call


#: eKuiper's functions of the rule rather than the row: name -> (WindowBounds slot, type)
_RULE_VALUES = {"rule_id": ("rule_id", pa.string()), "rule_start": ("rule_start", pa.int64()),
                "event_time": ("arrival", pa.int64())}


@dataclass
class AggSpec:
    """An aggregate call found in SELECT, HAVING or ORDER BY, computed once per window."""

    slot: str  # the grouped batch's column holding the result
    name: str  # the function's name
    args: list[Expr]  # row mode: evaluated over the window's rows
    star: bool = False  # count(*)
    builtin: fns.Builtin | None = None
    use: FunctionUse | None = None
    type: pa.DataType | None = None


@dataclass
class GroupContext:
    """What group mode reads: aggregate results, GROUP BY keys, first-row columns."""

    aggs: dict[int, AggSpec] = field(default_factory=dict)  # id(sqlglot node) -> spec
    dims: list[tuple[exp.Expression, str, pa.DataType | None]] = field(default_factory=list)
    columns: set[str] = field(default_factory=set)  # raw columns read per group
    all_columns: bool = False  # SELECT * in a grouped query


class Calls:
    """The function-call methods of the compiler (a mixin: it uses the compiler's state)."""

    lookup: FunctionLookup
    group: GroupContext | None
    uses: list[FunctionUse]
    window: bool
    clause: str
    bounds: Any  # the compiler's WindowBounds

    def error(self, node: exp.Expression | None, problem: str, hint: str = "") -> SqlError:
        raise NotImplementedError

    def compile(self, node: exp.Expression) -> Expr:
        raise NotImplementedError

    def row(self, node: exp.Expression, clause: str) -> Expr:
        raise NotImplementedError

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
            assert isinstance(node, exp.Anonymous)  # as is_aggregate_call found
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
        name = function.name
        self._check_count(node, name, len(args), function.min_args, function.max_args, f"{name}(...)")
        compiled = [self.row(a, f"the argument of {name}()") for a in args]
        result_type = self._validate(node, name, function, compiled)
        use = FunctionUse(function, plugin, name, len(self.uses), result_type=result_type)
        self.uses.append(use)
        return AggSpec(slot, name, compiled, use=use, type=result_type)

    def _agg_type(self, node: exp.Expression, b: fns.Builtin, args: list[Expr]) -> pa.DataType | None:
        t = args[0].type
        if t is None:
            return None
        try:
            table = pa.table({"k": pa.array([], pa.int8()), "a": pa.array([], t)})
            spec = ("a", b.agg, b.agg_options) if b.agg_options is not None else ("a", b.agg)
            return table.group_by("k").aggregate([spec]).schema.field(f"a_{b.agg}").type
        except (pa.ArrowException, TypeError, ValueError, KeyError):
            raise self.error(
                node,
                f"{b.name}() cannot aggregate {type_name(t)} values",
                f'cast the argument, e.g. {b.name}(cast(x, "float"))',
            ) from None

    # casts: cast(x, "bigint") and CAST(x AS BIGINT) both become the built-in cast()
    def _cast_to_str(self, node: exp.CastToStrType) -> Expr:
        return self._cast(node, node.this, self.compile(node.args["to"]), node.args["to"])

    def _cast_as(self, node: exp.Cast) -> Expr:
        to = node.args["to"]
        sql_type = to.this.name.lower() if isinstance(to, exp.DataType) else str(to).lower()
        wanted = _SQL_TYPES.get(sql_type, sql_type)
        return self._cast(node, node.this, constant(pa.scalar(wanted), wanted), node)

    def _cast(self, node: exp.Expression, value: exp.Expression, target: Expr, target_node: exp.Expression) -> Expr:
        b = fns.builtin("cast")
        assert b is not None
        if not target.is_const or not pa.types.is_string(target.const.type):
            raise self.error(target_node, "the type of cast() must be a string constant", f"write {b.usage}")
        args = [self.compile(value), target]
        wanted = str(target.const.as_py()).lower()
        if wanted not in fns.CAST_TYPES:
            best = closest(wanted, fns.CAST_TYPES)
            raise self.error(
                target_node,
                f"cast() cannot make '{wanted}'",
                f"{'did you mean ' + repr(best) + '? ' if best else ''}types: {', '.join(fns.CAST_TYPES)}",
            )
        return self.apply(node, "cast()", b.impl, args, usage=b.usage)  # type: ignore[arg-type]

    # functions
    def _function(self, node: exp.Anonymous) -> Expr:
        name = str(node.this).lower()
        args = list(node.expressions)
        if name in fns.WINDOW_FUNCTIONS:
            raise self.error(
                node, f"{name.upper()}() can only be used in GROUP BY", f"write GROUP BY {name.upper()}(...)"
            )
        if name in ("meta", "mqtt"):
            return meta_call(self, node, name)
        b = fns.builtin(name)
        if b is None:
            found = self.lookup.lookup(name)
            if found is None:
                raise self._unknown_function(node, name)
            return self._plugin_call(node, name, args, *found)
        self._check_count(node, name, len(args), b.min_args, b.max_args, b.usage)
        if b.aggregate:
            raise self._misplaced_aggregate(node, name)
        if name in _RULE_VALUES:
            bounds, (attr, type_) = self.bounds, _RULE_VALUES[name]
            if name == "event_time" and self.window:
                attr = "end"  # in a window: its end, as eKuiper
            return Expr(lambda batch: pa.scalar(getattr(bounds, attr), type_), type_, sql=node.sql())
        if b.window_only:
            if not self.window:
                raise self.error(
                    node, f"{name}() needs a window", "add one to GROUP BY, e.g. GROUP BY TUMBLINGWINDOW(ss, 10)"
                )
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
        if b.name in ("json_path_query", "json_path_exists"):
            try:
                fns.parse_json_path(str(args[1].const.as_py()))
            except ValueError as exc:
                raise self.error(node.expressions[1], f"bad JSON path in {b.name}()", str(exc)) from None

    def _unknown_function(self, node: exp.Expression, name: str) -> SqlError:
        known = [*fns.BUILTIN_NAMES, *self.lookup.names()]
        best = closest(name, known)
        guess = f"did you mean '{best}'?" if best else ("no built-in or installed plugin has it; install the plugin "
                                                         "that provides it")
        return self.error(node, f"unknown function '{name}'",
                          f"{guess} (built-in and plugin functions: see GET /plugins/udfs)")

    def _misplaced_aggregate(self, node: exp.Expression, name: str) -> SqlError:
        if self.clause.startswith("the argument of"):
            return self.error(node, f"aggregate function '{name}' cannot be nested in {self.clause.split('of ')[1]}",
                              "aggregate the plain values")
        problem, hint = _MISPLACED.get(self.clause, _MISPLACED[""])
        return self.error(node, f"aggregate function '{name}' {problem}", hint)

    def _check_count(self, node: exp.Expression, name: str, n: int, lo: int, hi: int, usage: str) -> None:
        if n < lo or (hi >= 0 and n > hi):
            raise self.error(node, f"function '{name}' takes {_count_words(lo, hi)}, got {n}", f"write {usage}")

    def _plugin_call(
        self, node: exp.Anonymous, name: str, args: list[exp.Expression], function: Function, plugin: str
    ) -> Expr:
        name = function.name
        self._check_count(node, name, len(args), function.min_args, function.max_args, f"{name}(...)")
        if function.aggregate:
            raise self._misplaced_aggregate(node, name)
        for a in args:
            if isinstance(a, exp.Star):
                raise self.error(a, f"{name}() does not take '*'", "pass columns or constants")
        compiled = [self.compile(a) for a in args]
        result_type = self._validate(node, name, function, compiled)
        use = FunctionUse(function, plugin, name, len(self.uses), result_type=result_type)
        self.uses.append(use)
        # constants cross the ABI as length-1 arrays, built once here
        prepared = [pa.repeat(a.const, 1) if a.is_const else None for a in compiled]
        evals = [a.eval for a in compiled]

        if all(p is not None for p in prepared) and not getattr(function, "volatile", True):
            return Expr(_fold_once(use, prepared), result_type, sql=node.sql())
        if len(compiled) == 1 and prepared[0] is None:  # f(column), the common case, without the loop
            (only,) = evals

            def call(batch: pa.RecordBatch) -> Value:
                return use.call([as_array(only(batch))], batch.num_rows)

        else:

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
            shown = ", ".join(type_name(a.type) for a in args)
            raise self.error(node, f"function '{name}' does not accept ({shown})", str(exc)) from None

    # -- applying pyarrow kernels ------------------------------------------------------------------
    def apply(
        self,
        node: exp.Expression,
        op: str,
        fn: Callable[[list[Value], int], Value],
        args: list[Expr],
        *,
        volatile: bool = False,
        usage: str = "",
    ) -> Expr:
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

    def _trial(
        self, node: exp.Expression, op: str, fn: Callable[[list[Value], int], Value], args: list[Expr], usage: str
    ) -> pa.DataType | None:
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
            hint = 'cast a value to a matching type, e.g. cast(x, "float")'
            if usage:
                hint = f"write {usage}; {hint}"
            return self.error(node, f"cannot apply {op} to {shown}", hint)
        return self.error(node, f"cannot compute {op} of {shown}", _short(exc) + (f"; write {usage}" if usage else ""))


#: where an aggregate may not be: the clause -> (what is wrong, the fix)
_MISPLACED = {
    "WHERE": ("cannot be used in WHERE", "filter groups with HAVING instead"),
    "GROUP BY": ("cannot be used in GROUP BY", "group by columns or expressions of columns"),
    "": ("needs a window", "add one to GROUP BY, e.g. GROUP BY TUMBLINGWINDOW(ss, 10)"),
}


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


#: SQL type names in CAST(x AS type), as the type names of cast(x, "type")
_SQL_TYPES = {
    "bigint": "bigint",
    "int": "bigint",
    "integer": "bigint",
    "smallint": "bigint",
    "tinyint": "bigint",
    "float": "float",
    "double": "float",
    "decimal": "float",
    "real": "float",
    "varchar": "string",
    "char": "string",
    "text": "string",
    "string": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "datetime": "datetime",
    "timestamp": "datetime",
    "binary": "bytea",
    "varbinary": "bytea",
    "blob": "bytea",
    "bytea": "bytea",
}


__all__ = ["AggSpec", "Calls", "GroupContext"]
