"""The values of Go templates: how they print, which are true, and the functions a template calls.

Printing follows Go's fmt ``%v`` where it matters for text output (see :func:`go_str`); a
missing field is :data:`MISSING` (``<no value>``), distinct from a null (``<nil>``). The
functions are :data:`FUNCTIONS`, by the name a template calls them with; anything else is
refused when the template is parsed (:mod:`.gotemplate_parser`).
"""

from __future__ import annotations

import base64 as _b64
import json as _json
import math
import re
from typing import Any, Callable

MISSING = type("Missing", (), {"__repr__": lambda self: "<no value>"})()


class TemplateError(ValueError):
    """A template that does not parse or does not render; the message names the action."""


# -- printing ------------------------------------------------------------------------------


def go_str(value: Any) -> str:
    """A value as Go's fmt prints it with %v (objects and lists: as JSON)."""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "+Inf" if value > 0 else "-Inf"
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, (dict, list, tuple)):
        return _to_json(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _to_json(value: Any) -> str:
    from .formats import dumps

    return dumps(None if value is MISSING else value).decode()


def truth(value: Any) -> bool:
    """Go's truth of a value (if, with, and, or, not): empty, zero, null and missing are false."""
    if value is MISSING or value is None:
        return False
    if isinstance(value, (bool, int, float, str, bytes, list, tuple, dict)):
        return bool(value)
    return True


_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def _printf(fmt: str, *args: Any) -> str:
    out: list[str] = []
    pos = 0
    it = iter(args)
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos : m.start()])
        pos = m.end()
        flags, width, prec, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        arg = next(it, MISSING)
        if arg is MISSING:
            out.append(f"%!{verb}(MISSING)")
            continue
        spec = f"%{flags}{width or ''}{'.' + prec if prec is not None else ''}"
        try:
            if verb in "vs":
                out.append((spec + "s") % go_str(arg))
            elif verb == "q":
                out.append((spec + "s") % _json.dumps(go_str(arg), ensure_ascii=False))
            elif verb == "t":
                out.append((spec + "s") % go_str(bool(arg)))
            elif verb == "d":
                out.append((spec + "d") % int(arg))
            elif verb in "feEgGxXob":
                out.append((spec + verb) % (arg if verb in "feEgG" else int(arg)))
            else:
                out.append(f"%!{verb}({go_str(arg)})")
        except (TypeError, ValueError):
            out.append(f"%!{verb}({type(arg).__name__}={go_str(arg)})")
    out.append(fmt[pos:])
    return "".join(out)


def _compare(op: str) -> Callable[..., bool]:
    def cmp(a: Any, b: Any) -> bool:
        a = None if a is MISSING else a
        b = None if b is MISSING else b
        if op == "eq":
            return a == b
        if op == "ne":
            return a != b
        try:
            return {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]
        except TypeError:
            raise TemplateError(f"{op}: cannot compare {go_str(a)} and {go_str(b)}") from None

    return cmp


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise TemplateError("eq needs at least 2 arguments")
    return any(_compare("eq")(a, o) for o in others)


def _index(value: Any, *keys: Any) -> Any:
    for k in keys:
        try:
            value = value[k] if not isinstance(value, dict) else value.get(k, MISSING)
        except (IndexError, KeyError, TypeError):
            raise TemplateError(f"index: {go_str(value)} has no item {go_str(k)}") from None
    return value


def _arith(op: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    def fn(a: Any, b: Any) -> Any:
        try:
            return op(a, b)
        except (TypeError, ZeroDivisionError) as exc:
            raise TemplateError(f"cannot compute with {go_str(a)} and {go_str(b)}: {exc}") from None

    return fn


def _div(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool):
        return int(a / b) if b else a // b  # Go truncates toward zero; b == 0 raises
    return a / b


def _b64encode(value: Any) -> str:
    data = value if isinstance(value, bytes) else go_str(value).encode()
    return _b64.b64encode(data).decode("ascii")


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "json": _to_json,
    "toJson": _to_json,
    "base64": _b64encode,
    "printf": _printf,
    "print": lambda *a: "".join(go_str(x) for x in a),
    "len": lambda v: len(v) if v not in (None, MISSING) else 0,
    "index": _index,
    "eq": _eq,
    "ne": _compare("ne"),
    "lt": _compare("lt"),
    "le": _compare("le"),
    "gt": _compare("gt"),
    "ge": _compare("ge"),
    "and": lambda *a: next((x for x in a if not truth(x)), a[-1]),
    "or": lambda *a: next((x for x in a if truth(x)), a[-1]),
    "not": lambda a: not truth(a),
    "add": _arith(lambda a, b: a + b),
    "sub": _arith(lambda a, b: a - b),
    "mul": _arith(lambda a, b: a * b),
    "div": _arith(_div),
    "upper": lambda s: go_str(s).upper(),
    "lower": lambda s: go_str(s).lower(),
}


__all__ = ["FUNCTIONS", "MISSING", "TemplateError", "go_str", "truth"]
