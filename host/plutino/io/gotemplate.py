"""The subset of Go's text/template that a sink's ``dataTemplate`` may use.

eKuiper renders a sink's ``dataTemplate`` with Go's text/template; rules written for eKuiper
should render the same here. A template is parsed once, when the rule starts, and rendered for
each row (``sendSingle: true``: ``.`` is the row, an object) or each batch (``sendSingle:
false``: ``.`` is the list of rows). Supported:

- text, and actions ``{{ ... }}`` with the trim markers ``{{-`` and ``-}}``; comments ``{{/* */}}``
- values: ``.``, ``.field``, ``.a.b``, ``$`` (the top value), ``$.field``, variables ``$x`` /
  ``$x.field``, string literals ``"..."`` and ```raw```, numbers, ``true``, ``false``, ``nil``,
  and ``( pipeline )``
- pipelines ``value | fn arg`` (the value becomes the last argument, as in Go)
- ``{{if p}} {{else if p}} {{else}} {{end}}``, ``{{with p}} {{else}} {{end}}``,
  ``{{range p}}``, ``{{range $e := p}}``, ``{{range $i, $e := p}}`` (over a list, or an
  object's values in key order) with ``{{else}}``; ``{{$x := p}}`` and ``{{$x = p}}``
- functions: ``json`` / ``toJson`` (eKuiper's: the value as JSON), ``base64``, ``printf``,
  ``print``, ``len``, ``index``, ``eq ne lt le gt ge``, ``and or not``, ``add sub mul div``,
  ``upper lower``

Printing follows Go where it matters for text output: numbers as Go prints them (``3`` for a
float 3.0), booleans ``true``/``false``, a missing field ``<no value>`` and a null ``<nil>``.
One difference: an object or a list prints as JSON, where Go prints ``map[...]`` (use ``json``
to be explicit). Anything else (``block``, ``define``, ``template``, ``break``, other functions)
is refused when the rule starts, with the position of the action.
"""

from __future__ import annotations

import base64 as _b64
import json as _json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

_MISSING = type("Missing", (), {"__repr__": lambda self: "<no value>"})()


class TemplateError(ValueError):
    """A template that does not parse or does not render; the message names the action."""


# -- printing ------------------------------------------------------------------------------


def go_str(value: Any) -> str:
    """A value as Go's fmt prints it with %v (objects and lists: as JSON)."""
    if value is _MISSING:
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

    return dumps(None if value is _MISSING else value).decode()


def _truth(value: Any) -> bool:
    if value is _MISSING or value is None:
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
        arg = next(it, _MISSING)
        if arg is _MISSING:
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
        a = None if a is _MISSING else a
        b = None if b is _MISSING else b
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
            value = value[k] if not isinstance(value, dict) else value.get(k, _MISSING)
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
    "len": lambda v: len(v) if v not in (None, _MISSING) else 0,
    "index": _index,
    "eq": _eq,
    "ne": _compare("ne"),
    "lt": _compare("lt"),
    "le": _compare("le"),
    "gt": _compare("gt"),
    "ge": _compare("ge"),
    "and": lambda *a: next((x for x in a if not _truth(x)), a[-1]),
    "or": lambda *a: next((x for x in a if _truth(x)), a[-1]),
    "not": lambda a: not _truth(a),
    "add": _arith(lambda a, b: a + b),
    "sub": _arith(lambda a, b: a - b),
    "mul": _arith(lambda a, b: a * b),
    "div": _arith(_div),
    "upper": lambda s: go_str(s).upper(),
    "lower": lambda s: go_str(s).lower(),
}


# -- parsing -------------------------------------------------------------------------------

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(
    r"""\s*(?:
    (?P<str>"(?:[^"\\]|\\.)*") | (?P<raw>`[^`]*`) |
    (?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?) |
    (?P<field>(?:\$[A-Za-z0-9_]*|\.)?(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\$[A-Za-z0-9_]*|\.) |
    (?P<ident>[A-Za-z_][A-Za-z0-9_]*) |
    (?P<op>:=|=|\||\(|\)|,)
)""",
    re.X,
)


@dataclass
class _Node:
    kind: str  # text, out, if, range, with, set
    text: str = ""
    pipe: Any = None
    body: list["_Node"] = field(default_factory=list)
    orelse: list["_Node"] = field(default_factory=list)
    names: tuple[str, ...] = ()
    declare: bool = True


class Template:
    """A parsed template; :meth:`render` fills it with a value."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._nodes = _Parser(source).parse()

    def render(self, value: Any) -> str:
        out: list[str] = []
        _render(self._nodes, value, {"$": value}, out)
        return "".join(out)

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def _where(self, pos: int) -> str:
        line = self.source.count("\n", 0, pos) + 1
        return f"line {line}, column {pos - (self.source.rfind(chr(10), 0, pos) + 1) + 1}"

    def parse(self) -> list[_Node]:
        # a flat list of (kind, payload, pos), then nested by the block keywords
        items: list[tuple[str, str, int]] = []
        pos = 0
        for m in _ACTION.finditer(self.source):
            text = self.source[pos : m.start()]
            if m.group(1):
                text = text.rstrip()
            if items and items[-1][0] == "trim":
                items.pop()
                text = text.lstrip()
            if text:
                items.append(("text", text, pos))
            items.append(("action", m.group(2).strip(), m.start()))
            if m.group(3):
                items.append(("trim", "", m.end()))
            pos = m.end()
        tail = self.source[pos:]
        if items and items[-1][0] == "trim":
            items.pop()
            tail = tail.lstrip()
        if tail:
            items.append(("text", tail, pos))
        if "{{" in "".join(t for k, t, _ in items if k == "text"):
            raise TemplateError("dataTemplate: an action opened with '{{' is not closed with '}}'")
        self._items = items
        self._i = 0
        nodes, end = self._block(())
        if end is not None:
            raise TemplateError(f"dataTemplate: unexpected {{{{{end[0]}}}}} at {self._where(end[1])}")
        return nodes

    def _block(self, closers: tuple[str, ...]) -> tuple[list[_Node], tuple[str, int] | None]:
        nodes: list[_Node] = []
        while self._i < len(self._items):
            kind, text, pos = self._items[self._i]
            self._i += 1
            if kind == "text":
                nodes.append(_Node("text", text=text))
                continue
            if text.startswith("/*"):
                if not text.endswith("*/"):
                    raise TemplateError(f"dataTemplate: unclosed comment at {self._where(pos)}")
                continue
            word = text.split(None, 1)[0] if text else ""
            if word in ("end", "else"):
                if word not in closers:
                    raise TemplateError(f"dataTemplate: {{{{{text}}}}} at {self._where(pos)} closes nothing")
                return nodes, (text, pos)
            if word in ("if", "with", "range"):
                nodes.append(self._control(word, text[len(word) :].strip(), pos))
            elif word in ("block", "define", "template", "break", "continue"):
                raise TemplateError(
                    f"dataTemplate: {{{{{word}}}}} at {self._where(pos)} is not supported by Plutino; "
                    "see docs/io.md for the supported subset"
                )
            else:
                nodes.append(self._simple(text, pos))
        if closers:
            raise TemplateError(f"dataTemplate: a {{{{{closers[-1]}}}}} is missing at the end of the template")
        return nodes, None

    def _control(self, word: str, rest: str, pos: int) -> _Node:
        node = _Node(word)
        if word == "range":
            m = re.match(r"^(\$[A-Za-z0-9_]*)(?:\s*,\s*(\$[A-Za-z0-9_]*))?\s*:=\s*(.*)$", rest, re.S)
            if m:
                node.names = tuple(n for n in (m.group(1), m.group(2)) if n)
                rest = m.group(3)
        if not rest:
            raise TemplateError(f"dataTemplate: {{{{{word}}}}} at {self._where(pos)} needs a value")
        node.pipe = self._pipeline(rest, pos)
        node.body, end = self._block(("else", "end"))
        assert end is not None
        while end[0] != "end":
            tail = end[0][len("else") :].strip()
            if tail.startswith("if ") and word == "if":
                nested = self._control("if", tail[3:].strip(), end[1])
                node.orelse = [nested]
                return node
            if tail:
                raise TemplateError(f"dataTemplate: {{{{{end[0]}}}}} at {self._where(end[1])} is not supported")
            node.orelse, end = self._block(("end",))
            assert end is not None
        return node

    def _simple(self, text: str, pos: int) -> _Node:
        m = re.match(r"^(\$[A-Za-z0-9_]+)\s*(:?=)\s*(.*)$", text, re.S)
        if m:
            return _Node("set", names=(m.group(1),), pipe=self._pipeline(m.group(3), pos), declare=m.group(2) == ":=")
        return _Node("out", pipe=self._pipeline(text, pos))

    # pipeline := command ('|' command)* ; command := operand+ ; operand := literal | field | '(' pipeline ')'
    def _pipeline(self, text: str, pos: int) -> Any:
        tokens = self._tokens(text, pos)
        self._tok, self._t = tokens, 0
        pipe = self._parse_pipe(pos)
        if self._t != len(tokens):
            raise TemplateError(
                f"dataTemplate: unexpected '{tokens[self._t][1]}' in {{{{{text}}}}} at {self._where(pos)}"
            )
        return pipe

    def _tokens(self, text: str, pos: int) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        i = 0
        while i < len(text):
            if text[i:].strip() == "":
                break
            m = _TOKEN.match(text, i)
            if not m or m.end() == i:
                raise TemplateError(
                    f"dataTemplate: cannot read {text[i:].strip()[:20]!r} in {{{{{text}}}}} at {self._where(pos)}"
                )
            kind = m.lastgroup or ""
            value = m.group(kind)
            if (
                kind == "field"
                and value.startswith(".")
                and value != "."
                and out
                and out[-1] == ("op", ")")
                and m.start(kind) == i
            ):
                kind = "chain"  # (pipeline).field
            out.append((kind, value))
            i = m.end()
        return out

    def _parse_pipe(self, pos: int) -> list[list[Any]]:
        commands = [self._command(pos)]
        while self._t < len(self._tok) and self._tok[self._t] == ("op", "|"):
            self._t += 1
            commands.append(self._command(pos))
        return commands

    def _command(self, pos: int) -> list[Any]:
        operands: list[Any] = []
        while self._t < len(self._tok):
            kind, text = self._tok[self._t]
            if kind == "op" and text in ("|", ")"):
                break
            self._t += 1
            if kind == "op" and text == "(":
                operands.append(("pipe", self._parse_pipe(pos)))
                if self._t >= len(self._tok) or self._tok[self._t] != ("op", ")"):
                    raise TemplateError(f"dataTemplate: unclosed '(' at {self._where(pos)}")
                self._t += 1
                if self._t < len(self._tok) and self._tok[self._t][0] == "chain":
                    operands[-1] = ("chain", (operands[-1][1], self._tok[self._t][1]))
                    self._t += 1
            elif kind == "str":
                operands.append(("const", _json.loads(text)))
            elif kind == "raw":
                operands.append(("const", text[1:-1]))
            elif kind == "num":
                operands.append(("const", float(text) if any(c in text for c in ".eE") else int(text)))
            elif kind == "ident":
                if text in ("true", "false"):
                    operands.append(("const", text == "true"))
                elif text == "nil":
                    operands.append(("const", None))
                elif text in FUNCTIONS:
                    operands.append(("fn", text))
                else:
                    raise TemplateError(
                        f"dataTemplate: function '{text}' at {self._where(pos)} is not supported; "
                        f"functions: {', '.join(sorted(FUNCTIONS))}"
                    )
            elif kind == "field":
                operands.append(("field", text))
            else:
                raise TemplateError(f"dataTemplate: unexpected '{text}' at {self._where(pos)}")
        if not operands:
            raise TemplateError(f"dataTemplate: an empty command at {self._where(pos)}")
        return operands


# -- rendering -----------------------------------------------------------------------------


def _field(path: str, dot: Any, scope: dict[str, Any]) -> Any:
    if path == ".":
        return dot
    if path.startswith("$"):
        name, _, rest = path.partition(".")
        if name not in scope:
            raise TemplateError(f"dataTemplate: undefined variable {name}")
        value = scope[name]
        parts = rest.split(".") if rest else []
    else:
        value = dot
        parts = path[1:].split(".")
    for part in parts:
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
        elif value is None or value is _MISSING:
            return _MISSING
        else:
            raise TemplateError(f"dataTemplate: cannot read field '{part}' of {go_str(value)}")
    return value


def _eval(pipe: list[list[Any]], dot: Any, scope: dict[str, Any]) -> Any:
    result: Any = _MISSING
    for n, command in enumerate(pipe):
        head = command[0]
        try:
            args = [_operand(op, dot, scope) for op in command[1:]]
            if n > 0:
                args.append(result)
            if head[0] == "fn":
                result = FUNCTIONS[head[1]](*args)
                continue
        except TemplateError:
            raise
        except (TypeError, IndexError) as exc:
            raise TemplateError(f"dataTemplate: {head[1]}: wrong arguments ({exc})") from None
        if args:
            raise TemplateError(f"dataTemplate: {head[1]!r} is not a function and cannot take arguments")
        else:
            result = _operand(head, dot, scope)
    return result


def _operand(op: tuple[str, Any], dot: Any, scope: dict[str, Any]) -> Any:
    kind, value = op
    if kind == "const":
        return value
    if kind == "field":
        return _field(value, dot, scope)
    if kind == "pipe":
        return _eval(value, dot, scope)
    if kind == "chain":
        pipe, path = value
        return _field(path, _eval(pipe, dot, scope), scope)
    return FUNCTIONS[value]()


def _render(nodes: list[_Node], dot: Any, scope: dict[str, Any], out: list[str]) -> None:
    for node in nodes:
        if node.kind == "text":
            out.append(node.text)
        elif node.kind == "out":
            out.append(go_str(_eval(node.pipe, dot, scope)))
        elif node.kind == "set":
            scope[node.names[0]] = _eval(node.pipe, dot, scope)
        elif node.kind == "if":
            value = _eval(node.pipe, dot, scope)
            _render(node.body if _truth(value) else node.orelse, dot, scope, out)
        elif node.kind == "with":
            value = _eval(node.pipe, dot, scope)
            if _truth(value):
                _render(node.body, value, scope, out)
            else:
                _render(node.orelse, dot, scope, out)
        elif node.kind == "range":
            value = _eval(node.pipe, dot, scope)
            if isinstance(value, dict):
                items = [(k, value[k]) for k in sorted(value)]
            elif isinstance(value, (list, tuple)):
                items = list(enumerate(value))
            elif isinstance(value, int) and not isinstance(value, bool):
                items = [(i, i) for i in range(value)]
            elif value is None or value is _MISSING:
                items = []
            else:
                raise TemplateError(f"dataTemplate: range cannot iterate over {go_str(value)}")
            if not items:
                _render(node.orelse, dot, scope, out)
            for key, item in items:
                inner = dict(scope)
                if len(node.names) == 1:
                    inner[node.names[0]] = item
                elif len(node.names) == 2:
                    inner[node.names[0]], inner[node.names[1]] = key, item
                _render(node.body, item, inner, out)


def render_rows(template: Template, rows: list[dict[str, Any]]) -> list[bytes]:
    """The template rendered once per row."""
    return [template.render(row).encode() for row in rows]


__all__ = ["FUNCTIONS", "Template", "TemplateError", "go_str", "render_rows"]
