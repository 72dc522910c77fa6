"""Parsing a Go template into nodes: the actions, the block structure and the pipelines.

The template is split into text and actions (``{{ ... }}``, with the trim markers ``{{-``
and ``-}}``), the actions are nested by their block keywords (if, with, range, else, end), and
each action's pipeline is read into commands of operands. Anything outside the supported subset
(see :mod:`.gotemplate`) is a :class:`TemplateError` naming the action's line and column.
"""

from __future__ import annotations

import json as _json
import re
from dataclasses import dataclass, field
from typing import Any

from .gotemplate_functions import FUNCTIONS, TemplateError

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
class Node:
    kind: str  # text, out, if, range, with, set
    text: str = ""
    pipe: Any = None
    body: list["Node"] = field(default_factory=list)
    orelse: list["Node"] = field(default_factory=list)
    names: tuple[str, ...] = ()
    declare: bool = True


class Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def _where(self, pos: int) -> str:
        line = self.source.count("\n", 0, pos) + 1
        return f"line {line}, column {pos - (self.source.rfind(chr(10), 0, pos) + 1) + 1}"

    def parse(self) -> list[Node]:
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

    def _block(self, closers: tuple[str, ...]) -> tuple[list[Node], tuple[str, int] | None]:
        nodes: list[Node] = []
        while self._i < len(self._items):
            kind, text, pos = self._items[self._i]
            self._i += 1
            if kind == "text":
                nodes.append(Node("text", text=text))
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

    def _control(self, word: str, rest: str, pos: int) -> Node:
        node = Node(word)
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

    def _simple(self, text: str, pos: int) -> Node:
        m = re.match(r"^(\$[A-Za-z0-9_]+)\s*(:?=)\s*(.*)$", text, re.S)
        if m:
            return Node("set", names=(m.group(1),), pipe=self._pipeline(m.group(3), pos), declare=m.group(2) == ":=")
        return Node("out", pipe=self._pipeline(text, pos))

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


__all__ = ["Node", "Parser"]
