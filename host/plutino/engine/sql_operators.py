"""The operators in SQL expressions: arithmetic, comparison, logic, IS, BETWEEN, LIKE, IN, CASE.

This part of the :class:`~plutino.engine.compiler.Compiler` turns each operator into its
pyarrow.compute kernel, applied through :meth:`~plutino.engine.calls.Calls.apply` (so a type
error is a SQL error at rule creation, with its place). An integer constant facing a float
column is made a float constant once, here, rather than cast on every batch. CASE and IF
become one ``case_when`` over the conditions, with the branches cast to their common type.
"""

from __future__ import annotations

from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from . import functions as fns
from .calls import Calls, _short
from .expr import Expr, Value, broadcast, common_type, constant
from .types import type_name


class Operators(Calls):
    """The operator methods of the compiler (a mixin: it uses the compiler's state)."""

    def _binary(self, node: exp.Expression) -> Expr:  # an exp.Binary
        op, fn = BINARY_OPERATORS[type(node)]
        left, right = self.compile(node.this), self.compile(node.expression)
        if op in _ARITHMETIC_OR_COMPARISON:
            left, right = _as_float_like(left, right), _as_float_like(right, left)
        return self.apply(node, f"'{op}'", lambda v, n: fn(v[0], v[1]), [left, right])

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
            return self.apply(
                node,
                f"IS {'TRUE' if want else 'FALSE'}",
                lambda v, n: pc.fill_null(v[0] if want else pc.invert(v[0]), False),
                [arg],
            )
        raise self.error(node, f"unsupported IS test '{node.sql()}'", "use IS NULL, IS NOT NULL, IS TRUE or IS FALSE")

    def _between(self, node: exp.Between) -> Expr:
        args = [self.compile(node.this), self.compile(node.args["low"]), self.compile(node.args["high"])]
        return self.apply(
            node, "BETWEEN", lambda v, n: pc.and_kleene(pc.greater_equal(v[0], v[1]), pc.less_equal(v[0], v[2])), args
        )

    def _like(self, node: exp.Like) -> Expr:
        pattern = self.compile(node.expression)
        if not pattern.is_const or not pa.types.is_string(pattern.const.type):
            raise self.error(node.expression, "the pattern of LIKE must be a string constant", 'write s LIKE "abc%"')
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
                raise self.error(
                    node,
                    f"the IN list does not match {shown} values",
                    f"{_short(exc)}; list values of the column's type",
                ) from None
            return self.apply(node, "IN", lambda v, n: pc.is_in(v[0], value_set=value_set), [left])
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
        return self._choose(
            node,
            [self.compile(node.this)],
            [self.compile(node.args["true"])],
            self.compile(false) if false is not None else constant(pa.scalar(None)),
        )

    def _choose(self, node: exp.Expression, conds: list[Expr], values: list[Expr], default: Expr) -> Expr:
        for c in conds:
            if c.type is not None and not pa.types.is_boolean(c.type) and not pa.types.is_null(c.type):
                raise self.error(
                    node, f"a WHEN condition is {type_name(c.type)}, not boolean", "write a comparison, e.g. WHEN a > 1"
                )
        branch_types = [v.type for v in (*values, default)]
        target = None
        if all(t is not None for t in branch_types):
            target = common_type(branch_types)
            if target is None:
                shown = ", ".join(sorted({type_name(t) for t in branch_types if not pa.types.is_null(t)}))
                raise self.error(
                    node,
                    f"the branches of CASE have different types ({shown})",
                    'cast them to one type with cast(x, "string")',
                )
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


def _as_float_like(value: Expr, other: Expr) -> Expr:
    """An integer constant facing a float64 operand (``temperature > 50``), as a float64
    constant: pyarrow would cast it to float64 on every batch (a cast kernel call, about 2 us);
    here it is cast once. Only when the value is exact as a float64, so results are the same."""
    const = value.const
    if const is None or other.is_const or other.type != pa.float64() or not pa.types.is_integer(const.type):
        return value
    v = const.as_py()
    if v is None or abs(v) > 2**53:
        return value
    return constant(pa.scalar(float(v), pa.float64()), value.sql)


_ARITHMETIC_OR_COMPARISON = {"+", "-", "*", "/", "=", "!=", ">", ">=", "<", "<="}

BINARY_OPERATORS: dict[type, tuple[str, Callable[[Value, Value], Value]]] = {
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


__all__ = ["BINARY_OPERATORS", "Operators"]
