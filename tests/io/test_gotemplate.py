"""The Go text/template subset of dataTemplate renders as eKuiper's templates do."""

from __future__ import annotations

import pytest

from plutino.io.gotemplate import Template, TemplateError

ROW = {
    "id": 7,
    "t": 3.0,
    "ratio": 0.25,
    "name": "pump",
    "ok": True,
    "gone": None,
    "tags": {"zone": "b"},
    "list": [1, 2, 3],
}
ROWS = [{"id": 1, "t": 20.5}, {"id": 2, "t": 21.0}]


@pytest.mark.parametrize(
    "source, value, expected",
    [
        ('{"device": "{{.name}}", "temp": {{.t}}}', ROW, '{"device": "pump", "temp": 3}'),
        ("{{json .}}", {"a": 1, "b": [True, None]}, '{"a":1,"b":[true,null]}'),
        ('{"content":{{toJson .tags}}}', ROW, '{"content":{"zone":"b"}}'),
        ("{{.tags.zone}} {{$.id}} {{.ok}} {{.ratio}}", ROW, "b 7 true 0.25"),
        ("{{.gone}}|{{.missing}}", ROW, "<nil>|<no value>"),
        ("{{if gt .t 2.5}}hot{{else if gt .t 1}}warm{{else}}cold{{end}}", ROW, "hot"),
        ('{{if and .ok (eq .name "pump" "fan")}}yes{{end}}{{if not .gone}}!{{end}}', ROW, "yes!"),
        ("{{with .tags}}zone {{.zone}}{{else}}none{{end}}", ROW, "zone b"),
        ("{{with .gone}}x{{else}}none{{end}}", ROW, "none"),
        ('[{{range $i, $r := .}}{{if $i}},{{end}}{"id":{{$r.id}}}{{end}}]', ROWS, '[{"id":1},{"id":2}]'),
        ("{{range .}}{{.id}};{{else}}empty{{end}}", [], "empty"),
        ("{{- range . }}\n  {{ .id }}\n{{- end }}", ROWS, "\n  1\n  2"),
        ('{{printf "%.1f|%5d|%s|%q|%v" .ratio .id .name .name .list}}', ROW, '0.2|    7|pump|"pump"|[1,2,3]'),
        (
            '{{len .list}} {{index .list 1}} {{index . "name"}} {{.name | upper}} {{len (index . "list")}}',
            ROW,
            "3 2 pump PUMP 3",
        ),
        ("{{$x := add .id 1}}{{$x}} {{sub 10 .id}} {{mul .t 2}} {{div 7 2}} {{div 7.0 2}}", ROW, "8 3 6 3 3.5"),
        ("{{base64 .name}}{{/* a comment */}}", ROW, "cHVtcA=="),
        ("{{json (index . 0)}} {{len .}}", ROWS, '{"id":1,"t":20.5} 2'),
    ],
)
def test_renders_like_go(source: str, value: object, expected: str):
    assert Template(source).render(value) == expected


@pytest.mark.parametrize(
    "source, message",
    [
        ("{{.a", "dataTemplate: an action opened with '{{' is not closed with '}}'"),
        ("{{if .a}}x", "dataTemplate: a {{end}} is missing at the end of the template"),
        ("x\n {{end}}", "dataTemplate: {{end}} at line 2, column 2 closes nothing"),
        (
            "{{lookup .a}}",
            "dataTemplate: function 'lookup' at line 1, column 1 is not supported; functions: add, and, "
            "base64, div, eq, ge, gt, index, json, le, len, lower, lt, mul, ne, not, or, print, printf, "
            "sub, toJson, upper",
        ),
        (
            '{{template "x"}}',
            "dataTemplate: {{template}} at line 1, column 1 is not supported by Plutino; see "
            "docs/io.md for the supported subset",
        ),
    ],
)
def test_mistakes_are_refused_when_the_template_is_parsed(source: str, message: str):
    with pytest.raises(TemplateError) as err:
        Template(source)
    assert str(err.value) == message


def test_render_errors_name_the_problem():
    with pytest.raises(TemplateError) as err:
        Template("{{lt .name 3}}").render(ROW)
    assert str(err.value) == "lt: cannot compare pump and 3"
