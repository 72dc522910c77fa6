"""The client commands (`plutino stream|rule|query|plugin ... --url`) against a real server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from helpers import free_port
from plutino.cli.main import main

from .api_helpers import ServerProcess


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = ServerProcess(tmp_path_factory.mktemp("cli") / "data").start()
    yield server.url
    server.stop()


def plutino(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_stream_and_rule_commands(url):
    u = ("--url", url)
    assert plutino("stream", "create", 'CREATE STREAM s () WITH (TYPE="memory", DATASOURCE="cli")', *u) == (
        "Stream s is created.\n")
    assert plutino("stream", "list", *u) == "s\n"
    assert "fields:   (schemaless: columns come from the data)" in plutino("stream", "describe", "s", *u)
    rule = json.dumps({"sql": "SELECT * FROM s", "actions": [{"log": {}}]})
    assert plutino("rule", "create", "r", rule, *u) == "Rule r was created successfully.\n"
    assert plutino("rule", "list", *u) == "id  status   message\n--  -------  -------\nr   running\n"
    assert json.loads(plutino("rule", "status", "r", "--json", *u))["status"] == "running"
    assert plutino("rule", "stop", "r", *u) == "Rule r was stopped.\n"
    assert plutino("rule", "list", *u) == ("id  status   message\n--  -------  -----------------\n"
                                           "r   stopped  canceled manually\n")
    shown = plutino("rule", "status", "r", *u).splitlines()
    assert [line.split(None, 1) for line in shown[:2]] == [["status:", "stopped"], ["message:", "canceled manually"]]
    assert plutino("rule", "start", "r", *u) == "Rule r was started\n"
    assert json.loads(plutino("rule", "restart", "r", "--json", *u)) == {"message": "Rule r was restarted"}
    assert json.loads(plutino("rule", "describe", "r", *u))["sql"] == "SELECT * FROM s"
    assert plutino("rule", "drop", "r", *u) == "Rule r is dropped.\n"
    assert plutino("stream", "drop", "s", *u) == "Stream s is dropped.\n"
    assert plutino("rule", "list", *u) == "no rules\n"


def test_plugin_commands_and_query_over_rest(url, packages, echo_v2):
    u = ("--url", url)
    assert plutino("plugin", "install", str(packages["random"]), *u) == "source plugin random is created\n"
    described = json.loads(plutino("plugin", "install", str(packages["fastmath"]), "--json", *u))
    assert described["name"] == "fastmath" and described["status"] == "loaded"
    listed = plutino("plugin", "list", *u)
    assert "source    random                   1.0.0      loaded\n" in listed
    assert "function  fastmath                 1.0.0      loaded  (mul2add1, upperAscii)\n" in listed
    assert json.loads(plutino("plugin", "describe", "function", "fastmath", "--json", *u))["version"] == "1.0.0"

    plutino("stream", "create", 'CREATE STREAM demo () WITH (TYPE="random", CONF_KEY="ext")', *u)
    out = plutino("query", "SELECT count, mul2add1(count) AS c2 FROM demo", "-n", "2", "-s", "30", *u)
    lines = out.splitlines()
    assert lines[0].split() == ["count", "c2"] and len(lines) == 5 and lines[4].startswith("(2 rows in ")
    for line in lines[2:4]:
        count, c2 = line.split()
        assert float(c2) == int(count) * 2 + 1

    assert plutino("plugin", "install", packages["echo"].as_uri(), "--kind", "function", "--name", "echo", *u) == (
        "function plugin echo is created\n")
    assert plutino("plugin", "update", str(echo_v2), *u) == "function plugin echo is updated to 1.1.0\n"
    out = plutino("plugin", "update", str(echo_v2), *u, code=1)
    assert out.startswith("error: package echo-1.1.0.zip holds function plugin echo version 1.1.0, which is the")
    assert json.loads(plutino("plugin", "delete", "function", "echo", "--json", *u)) == {
        "message": "function plugin echo is deleted"}

    plutino("stream", "drop", "demo", *u)
    assert plutino("plugin", "delete", "function", "fastmath", *u) == "function plugin fastmath is deleted\n"
    assert "fastmath" not in plutino("plugin", "list", "function", *u)


def test_exit_codes_one_for_refusals_two_for_usage(url):
    out = plutino("rule", "status", "nope", "--url", url, code=1)
    assert out == "error: rule 'nope' not found; existing rules: none\n"
    assert "Missing argument 'SQL'" in plutino("stream", "create", "--url", url, code=2)
    assert "give the rule as JSON text or with -f FILE" in plutino("rule", "create", "r", "--url", url, code=2)
    assert "not both" in plutino("plugin", "list", "--url", url, "--data-dir", "x", code=2)
    dead = f"http://127.0.0.1:{free_port()}"
    out = plutino("stream", "list", "--url", dead, code=1)
    assert out.startswith(f"error: cannot reach the Plutino server at {dead} (")
    assert out.endswith("start it with `plutino serve`, or point --url (or PLUTINO_URL) at it\n")


def test_plugin_commands_without_a_server_work_on_a_data_dir(packages, tmp_path, monkeypatch):
    monkeypatch.delenv("PLUTINO_URL", raising=False)
    home = str(tmp_path / "home")
    assert plutino("plugin", "install", str(packages["echo"]), "--data-dir", home) == (
        "function plugin echo 1.0.0 is installed (plugins/functions/echo@v1.0.0.so)\n")
    monkeypatch.setenv("PLUTINO_HOME", home)
    assert plutino("plugin", "list") == "function  echo                     1.0.0      loaded  (echo, countPlusOne)\n"
