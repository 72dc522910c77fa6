"""The CLI agrees with the server: one rule for naming it, a data dir a running server holds is
not changed behind its back, install errors are the real ones, advice is in the CLI's words,
and updating a stopped rule keeps it stopped (eKuiper's semantics), over REST and the CLI."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from plutino.cli.advice import cli_advice
from plutino.cli.main import main
from plutino.errors import PlutinoError
from plutino.server_lock import ServerLock, offline_change

from .api_helpers import ServerProcess, free_port, subprocess_env

FORMS = "give a port (9081), host:port (localhost:9081) or a URL (http://127.0.0.1:9081)"


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder the server reads packages from (--allow-file-dir): the broken ones live here."""
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, uploads: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("cli-url") / "data", "--allow-file-dir", str(uploads)).start()
    yield proc
    proc.stop()


def plutino(*args: str, code: int = 0, **env: str) -> str:
    """The CLI in this process, with only the environment ``env`` of its PLUTINO_* variables."""
    clean: dict[str, str | None] = {"PLUTINO_URL": None, "PLUTINO_PORT": None, "PLUTINO_HOME": None}
    result = CliRunner().invoke(main, list(args), env={**clean, **env}, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def usage_error(message: str) -> str:
    return message.split("\n")[-2]  # click's usage lines, then "Error: ..."


# -------------------------------------------------------------------- one client URL rule


def test_every_form_of_naming_the_server_reaches_it(server):
    port, dead = str(server.port), str(free_port())
    missing = "error: rule 'nope' not found; existing rules: "
    for args, env in [
        (("--url", port, "rule", "status", "nope"), {}),  # on the group
        (("rule", "status", "nope", "--url", port), {}),  # on the command
        (("rule", "status", "nope", "--url", f"localhost:{port}"), {}),
        (("rule", "status", "nope", "--url", server.url), {}),
        (("rule", "status", "nope"), {"PLUTINO_URL": port}),
        (("rule", "status", "nope"), {"PLUTINO_PORT": port}),  # the port `plutino serve` reads
        (("--url", dead, "rule", "status", "nope", "--url", port), {}),  # the command's --url wins
        (("rule", "status", "nope"), {"PLUTINO_URL": f"127.0.0.1:{port}", "PLUTINO_PORT": dead}),
    ]:
        assert plutino(*args, code=1, **env).startswith(missing), (args, env)
    assert plutino("--url", port, "plugin", "keys") == "no trusted keys\n"
    assert plutino("plugin", "keys", "--url", f"localhost:{port}") == "no trusted keys\n"
    assert plutino("plugin", "keys", PLUTINO_PORT=port) == "no trusted keys\n"


def test_a_value_that_names_no_server_is_a_usage_error_naming_the_accepted_forms():
    cases = [
        (("--url", "abc:xyz", "rule", "list"), {}, "--url 'abc:xyz' does not name a Plutino server: 'xyz' is not"
                                                   " a port number"),
        (("rule", "list", "--url", "ftp://x"), {}, "--url 'ftp://x' does not name a Plutino server: its scheme is"
                                                   " 'ftp', not http or https"),
        (("plugin", "list", "--url", "70000"), {}, "--url '70000' does not name a Plutino server: port 70000 is not"
                                                   " between 1 and 65535"),
        (("rule", "list"), {"PLUTINO_URL": "localhost"}, "PLUTINO_URL 'localhost' does not name a Plutino server:"
                                                         " it names no port"),
    ]
    for args, env, problem in cases:
        assert usage_error(plutino(*args, code=2, **env)) == f"Error: {problem}; {FORMS}", args
    assert usage_error(plutino("stream", "list", code=2, PLUTINO_PORT="x")) == (
        "Error: PLUTINO_PORT 'x' is not a port (1 to 65535); set it to the server's port, or name the server with"
        f" --url (or PLUTINO_URL): {FORMS[5:]}")


def test_a_wrong_url_in_the_environment_of_the_real_command_is_no_traceback():
    done = subprocess.run([sys.executable, "-m", "plutino", "rule", "list"], capture_output=True, text=True,
                          env=subprocess_env(PLUTINO_URL="9181x"), timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"Error: PLUTINO_URL '9181x' does not name a Plutino server: it names no port; {FORMS}")


# -------------------------------------------------------------------- a served data dir


def test_an_offline_change_to_a_served_data_dir_is_refused_naming_the_server_command(server, packages):
    data, echo = server.data_dir, str(packages["echo"])

    def refusal(command: str) -> str:
        return (f"error: the data dir {data} is served by the Plutino server at {server.url}, which would not see a"
                f" change made here until it restarts; make it through the server: {command} --url {server.url}\n")

    home = {"PLUTINO_HOME": str(data)}
    assert plutino("plugin", "install", echo, code=1, **home) == refusal(shlex.join(["plutino", "plugin", "install",
                                                                                     echo]))
    assert plutino("plugin", "install", echo, "--data-dir", str(data), "--kind", "function", "--sha256", "ab",
                   code=1) == refusal(f"plutino plugin install {echo} --kind function --sha256 ab")
    assert plutino("plugin", "delete", "function", "echo", "--force", code=1, **home) == refusal(
        "plutino plugin delete function echo --force")
    assert plutino("plugin", "untrust", "alice", code=1, **home) == refusal("plutino plugin untrust alice")
    assert plutino("plugin", "list", **home) == "no plugins installed\n"  # reading is harmless
    # the command it names does the job, through the server, which uses the plugin at once
    assert plutino("plugin", "install", echo, "--url", server.url) == "function plugin echo is created\n"
    assert plutino("plugin", "delete", "function", "echo", "--url", server.url) == "function plugin echo is deleted\n"


def test_a_second_server_on_a_served_data_dir_is_refused_naming_the_first(server):
    done = subprocess.run([sys.executable, "-m", "plutino", "serve", "--port", str(free_port()), "--data-dir",
                           str(server.data_dir)], capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert done.returncode == 1
    assert done.stderr.rstrip().endswith(
        f"cannot serve the data dir {server.data_dir}: the Plutino server at {server.url} serves it; stop that"
        " server, or give this one another --data-dir (or PLUTINO_HOME)")


def test_the_lock_goes_with_the_server_and_a_starting_server_waits_for_an_offline_change(tmp_path, packages):
    lock = ServerLock.take(tmp_path, "http://127.0.0.1:1")
    assert plutino("plugin", "install", str(packages["echo"]), "--data-dir", str(tmp_path), code=1).endswith(
        f"make it through the server: plutino plugin install {packages['echo']} --url http://127.0.0.1:1\n")
    lock.release()
    assert plutino("plugin", "install", str(packages["echo"]), "--data-dir", str(tmp_path)) == (
        "function plugin echo 1.0.0 is installed (plugins/functions/echo@v1.0.0.so)\n")
    with offline_change(tmp_path), pytest.raises(PlutinoError) as refused:
        ServerLock.take(tmp_path, "http://127.0.0.1:1", wait_s=0.2)
    assert str(refused.value) == (
        f"cannot serve the data dir {tmp_path}: a plutino command has been changing it without a server for 0.2 s"
        " (plutino plugin install|update|delete|trust|untrust --data-dir); let it finish, then start the server again")
    ServerLock.take(tmp_path, "http://127.0.0.1:1", wait_s=0.2).release()  # once it is done


# -------------------------------------------------------------------- the real install error


def test_the_cli_shows_the_servers_words_for_a_package_it_cannot_read(server, packages, uploads):
    truncated = uploads / "broken.zip"
    truncated.write_bytes(packages["echo"].read_bytes()[:300])
    source = uploads / "myfn.c"
    source.write_text("int x;\n")
    for path in (truncated, source):
        said = plutino("plugin", "install", str(path), "--url", server.url, code=1)
        answer = server.post("/plugins/functions", json={"name": "myfn", "file": path.as_uri()})
        assert answer.status_code == 400
        assert said == f"error: {answer.json()['message']}\n"
        assert said.startswith(f"error: package {path.name} is not a zip file, or a damaged or truncated one (")
    url = f"http://127.0.0.1:{free_port()}/myfn.zip"
    assert plutino("plugin", "install", url, "--url", server.url, code=1) == (
        f"error: cannot download {url}: [Errno 111] Connection refused; check the host name and that the server is"
        " reachable from the Plutino host (the CLI downloads the package to read its kind and name; if only the server"
        " can reach it, give --kind and --name)\n")


# -------------------------------------------------------------------- CLI advice in the CLI


def test_server_refusals_give_cli_advice_and_rest_answers_keep_rest_advice(server, packages, tmp_path):
    u = ("--url", server.url)
    echo = str(packages["echo"])
    plutino("plugin", "install", echo, *u)
    assert plutino("plugin", "install", echo, *u, code=1) == (
        "error: function plugin echo is already installed (version 1.0.0); to replace it use `plutino plugin update"
        f" {echo}`, or delete it first (`plutino plugin delete function echo`)\n")
    rest = server.post("/plugins/functions", json={"name": "echo", "file": packages["echo"].as_uri()})
    assert rest.json()["message"] == ("function plugin echo is already installed (version 1.0.0); to replace it use"
                                      " PUT /plugins/functions/echo, or DELETE it first")
    plutino("stream", "create", 'CREATE STREAM adv () WITH (TYPE="memory", DATASOURCE="adv")', *u)
    rule = json.dumps({"sql": "SELECT echo(a) AS e FROM adv", "actions": [{"log": {}}]})
    plutino("rule", "create", "adv", rule, *u)
    assert plutino("rule", "create", "adv", rule, *u, code=1) == (
        "error: rule 'adv' already exists; delete it first (`plutino rule drop adv`), update it (`plutino rule update"
        " adv`), or choose another id\n")
    assert plutino("plugin", "delete", "function", "echo", *u, code=1) == (
        "error: function plugin echo is used by running rule(s) adv; stop or delete them first, or delete with"
        " --force, which stops them\n")
    assert plutino("stream", "drop", "adv", *u, code=1) == (
        "error: stream 'adv' is used by rule(s) adv; delete them first, or drop the definition anyway with `plutino"
        " stream drop adv --force` (the rules stay, and cannot start again until the stream is created again)\n")
    assert plutino("rule", "create", "bad", json.dumps({"sql": "SELECT ech(a) FROM adv", "actions": [{"log": {}}]}),
                   *u, code=1) == (
        "error: unknown function 'ech' at line 1, col 8; did you mean 'echo'? (built-in and plugin functions: see"
        " `plutino plugin list function`)\n")
    assert plutino("rule", "drop", "adv", *u) == "Rule adv is dropped.\n"
    assert plutino("stream", "drop", "adv", "--force", *u) == "Stream adv is dropped.\n"
    assert plutino("plugin", "delete", "function", "echo", "--force", *u) == "function plugin echo is deleted\n"
    # the same advice without a server, on a data directory
    home = str(tmp_path / "home")
    plutino("plugin", "install", echo, "--data-dir", home)
    assert plutino("plugin", "install", echo, "--data-dir", home, code=1) == (
        "error: function plugin echo is already installed (version 1.0.0); to replace it use `plutino plugin update"
        f" {echo}`, or delete it first (`plutino plugin delete function echo`)\n")


@pytest.mark.parametrize("rest, cli", [
    ("install it (POST /plugins/sinks, plutino plugin install)", "install it (`plutino plugin install PACKAGE.zip`)"),
    ("wait for it to finish, then see GET /plugins/sources/random",
     "wait for it to finish, then see `plutino plugin describe source random`"),
    ("delete it first (DELETE /plugins/trusted_keys/alice) or pick another name",
     "delete it first (`plutino plugin untrust alice`) or pick another name"),
    ("trust its public key: plutino plugin trust KEY.pub (or POST /plugins/trusted_keys)",
     "trust its public key: plutino plugin trust KEY.pub"),
    ("replace it with PUT /rules/r2 or delete it with DELETE /rules/r2",
     "replace it with `plutino rule update r2` or delete it with `plutino rule drop r2`"),
    ("start it again with POST /rules/culprit/start once the plugin is fixed",
     "start it again with `plutino rule start culprit` once the plugin is fixed"),
    ("see GET /plugins/udfs for the list", "see `plutino plugin list function` for the list"),
    ("the statement defines stream 'a', but the path says 'b'; PUT /streams/a, or name the stream b in the statement",
     "the statement defines stream 'a', but the path says 'b'; `plutino stream update a SQL`, or name the stream b"
     " in the statement"),
    ("which is kept for the temporary rules of POST /query; choose another id",
     "which is kept for the temporary rules of `plutino query`; choose another id"),
    ("stream 's' is not found", "stream 's' is not found"),
])
def test_each_rest_hint_of_the_host_has_its_cli_words(rest, cli):
    assert cli_advice(rest) == cli


# -------------------------------------------------------------------- updating a stopped rule


def test_updating_a_stopped_rule_keeps_it_stopped_over_rest_and_the_cli(server):
    u = ("--url", server.url)
    plutino("stream", "create", 'CREATE STREAM upd () WITH (TYPE="memory", DATASOURCE="upd")', *u)
    body = {"sql": "SELECT a FROM upd", "actions": [{"log": {}}]}
    plutino("rule", "create", "upd", json.dumps(body), *u)
    plutino("rule", "stop", "upd", *u)
    assert server.put("/rules/upd", json={**body, "sql": "SELECT a, 1 AS b FROM upd"}).status_code == 200
    assert server.get("/rules").json() == [{"id": "upd", "name": "upd", "status": "stopped",
                                            "message": "canceled manually"}]
    assert plutino("rule", "update", "upd", json.dumps({**body, "sql": "SELECT a, 2 AS b FROM upd"}), *u) == (
        "Rule upd was updated successfully.\n")
    assert json.loads(plutino("rule", "status", "upd", "--json", *u))["status"] == "stopped"
    assert json.loads(plutino("rule", "describe", "upd", *u))["sql"] == "SELECT a, 2 AS b FROM upd"
    plutino("rule", "start", "upd", *u)
    plutino("rule", "update", "upd", json.dumps(body), *u)  # a running rule restarts with it
    assert json.loads(plutino("rule", "status", "upd", "--json", *u))["status"] == "running"
    plutino("rule", "drop", "upd", *u)
    plutino("stream", "drop", "upd", *u)
