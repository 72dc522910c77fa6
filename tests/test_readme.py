"""The README stays true: the demo rule it quotes is the one `make run` creates, and every
`curl` line of its quick start names a route the server has."""

from __future__ import annotations

import json
import re
from pathlib import Path

from plutino.demo import DEMO_SQL

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_demo_rule_in_the_readme_is_the_one_make_run_creates():
    quoted = re.search(r"the rule `demo` \(`(SELECT .+?)`,", README, re.S)
    assert quoted, "README.md no longer quotes the demo rule's SQL"
    assert " ".join(quoted.group(1).split()) == " ".join(DEMO_SQL.split())


def test_every_curl_in_the_readme_names_a_route_of_the_server():
    spec = json.loads((ROOT / "docs" / "openapi.json").read_text())
    routes = [re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$") for p in spec["paths"]]
    paths = re.findall(r"curl [^\n]*?localhost:\d+(/[^\s\"'?]*)", README)
    assert paths, "README.md has no curl examples"
    for path in paths:
        assert any(r.match(path) for r in routes), f"README.md: curl ...{path} is not a route (docs/openapi.json)"
