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

The template's values, printing and functions are in :mod:`.gotemplate_functions`, parsing in
:mod:`.gotemplate_parser`; this module renders.
"""

from __future__ import annotations

from typing import Any

from .gotemplate_functions import FUNCTIONS, MISSING, TemplateError, go_str, truth
from .gotemplate_parser import Node, Parser


class Template:
    """A parsed template; :meth:`render` fills it with a value."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._nodes = Parser(source).parse()

    def render(self, value: Any) -> str:
        out: list[str] = []
        _render(self._nodes, value, {"$": value}, out)
        return "".join(out)

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


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
            value = value.get(part, MISSING)
        elif value is None or value is MISSING:
            return MISSING
        else:
            raise TemplateError(f"dataTemplate: cannot read field '{part}' of {go_str(value)}")
    return value


def _eval(pipe: list[list[Any]], dot: Any, scope: dict[str, Any]) -> Any:
    result: Any = MISSING
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


def _render(nodes: list[Node], dot: Any, scope: dict[str, Any], out: list[str]) -> None:
    for node in nodes:
        if node.kind == "text":
            out.append(node.text)
        elif node.kind == "out":
            out.append(go_str(_eval(node.pipe, dot, scope)))
        elif node.kind == "set":
            scope[node.names[0]] = _eval(node.pipe, dot, scope)
        elif node.kind == "if":
            value = _eval(node.pipe, dot, scope)
            _render(node.body if truth(value) else node.orelse, dot, scope, out)
        elif node.kind == "with":
            value = _eval(node.pipe, dot, scope)
            if truth(value):
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
            elif value is None or value is MISSING:
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
