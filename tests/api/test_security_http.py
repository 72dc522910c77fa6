"""Security of the REST API over real HTTP (issue 16): no cross-site writes, no DNS rebinding, the
token on reads, secrets masked in every answer, the CLI's output and the log.

Two real servers for the whole module: ``guarded`` (a token; one allowed web origin and one allowed
host name) and ``public`` (a token, with ``api.public_reads``). Rules send to a real HTTP listener,
so a secret kept through a masked update is seen arriving where the sink sends it.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import wait_for
from plutino.cli.main import main as cli

from .api_helpers import ServerProcess

TOKEN = "t0ken-of-the-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UI = "http://ui.example:3000"
MASK = "******"
SIMULATOR_YAML = "default:\n  interval: 100\n  data:\n    - {t: 21.5}\n"


class Listener:
    """An HTTP endpoint on loopback that records each request's path and Authorization header."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen.append((self.path, self.headers.get("Authorization")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    endpoint = Listener()
    yield endpoint
    endpoint.server.shutdown()
    endpoint.server.server_close()


def _server(data: Path, **env: str) -> ServerProcess:
    (data / "etc" / "sources").mkdir(parents=True)
    (data / "etc" / "sources" / "simulator.yaml").write_text(SIMULATOR_YAML)
    return ServerProcess(data, env={"PLUTINO_TOKEN": TOKEN, **env}).start()


@pytest.fixture(scope="module")
def uploads(packages: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("uploads")
    shutil.copy(packages["echo"], folder / "echo.zip")
    return folder


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, uploads: Path) -> Iterator[ServerProcess]:
    server = _server(tmp_path_factory.mktemp("guarded") / "data", PLUTINO_ALLOWED_ORIGINS=UI,
                     PLUTINO_ALLOWED_HOSTS="plutino.example", PLUTINO_ALLOWED_FILE_DIRS=str(uploads))
    r = server.post("/streams", json={"sql": 'CREATE STREAM sim (t FLOAT) WITH (TYPE="simulator")'}, headers=AUTH)
    assert r.status_code == 201, r.text
    yield server
    server.stop()


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = _server(tmp_path_factory.mktemp("public") / "data", PLUTINO_PUBLIC_READS="true")
    yield server
    server.stop()


def _error(r, status: int, kind: str, message: str) -> None:
    assert (r.status_code, r.json()) == (status, {"error": 1000, "type": kind, "message": message}), r.text


# ---------------------------------------------------------------- cross-site requests and DNS rebinding


def test_a_write_whose_body_is_not_json_is_refused_with_415(guarded):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        r = guarded.post("/streams", content=b'{"sql": "CREATE STREAM x () WITH (TYPE=\\"memory\\")"}',
                         headers={**AUTH, "Content-Type": content_type})
        _error(r, 415, "UnsupportedMediaType",
               f"POST /streams: the body is sent as {content_type!r}, and this API reads JSON bodies only: send the"
               " header 'Content-Type: application/json' (curl: -H 'Content-Type: application/json'); the plutino"
               " CLI sends it")
    r = guarded.post("/streams", content=b"{}", headers=AUTH)  # httpx sends no Content-Type for raw content
    assert r.status_code == 415 and "the body is sent without a Content-Type" in r.json()["message"]
    assert guarded.get("/streams", headers=AUTH).json() == ["sim"]
    # a write without a body needs no Content-Type
    r = guarded.post("/rules/nope/start", headers=AUTH)
    assert r.status_code == 404, r.text


def test_a_request_from_a_page_of_another_site_is_refused_with_403(guarded):
    evil = {**AUTH, "Origin": "http://evil.example"}
    message = ("requests from the web page at 'http://evil.example' are refused: that origin may not use this API"
               " (a page from any site could otherwise change rules or install plugins). To let a web UI served"
               " there use it, add its origin to api.allowed_origins in etc/plutino.yaml (or"
               " PLUTINO_ALLOWED_ORIGINS)")
    r = guarded.post("/plugins/functions", json={"name": "echo", "file": "http://evil.example/echo.zip"}, headers=evil)
    _error(r, 403, "Forbidden", message)
    _error(guarded.get("/rules", headers=evil), 403, "Forbidden", message)
    r = guarded.post("/rules", json={"id": "x"}, headers={**AUTH, "Origin": "null"})  # a sandboxed page, a file
    assert r.status_code == 403 and r.json()["message"].startswith("requests from the web page at 'null' are refused")
    assert guarded.get("/plugins/functions", headers=AUTH).json() == []


def test_a_request_for_another_host_name_is_refused_with_403_dns_rebinding(guarded):
    port = guarded.port
    for host in (f"attacker.example:{port}", "attacker.example", f"localhost:{port + 1}"):
        r = guarded.get("/rules", headers={**AUTH, "Host": host})
        _error(r, 403, "Forbidden",
               f"the Host header {host!r} does not name this server, which answers to localhost, 127.0.0.1, [::1]"
               f" on port {port}; a request for another name is how a web page reaches a local server by DNS"
               " rebinding. If you reach the server by that name (a DNS name, a proxy), add it to"
               " api.allowed_hosts in etc/plutino.yaml (or PLUTINO_ALLOWED_HOSTS)")
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "plutino.example", "Plutino.Example:80"):
        r = guarded.get("/rules", headers={**AUTH, "Host": host})
        assert r.status_code == 200, (host, r.text)


def test_an_allowed_origin_and_the_servers_own_pages_are_accepted(guarded):
    preflight = guarded.http.request("OPTIONS", "/streams", headers={
        "Origin": UI, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == UI
    r = guarded.post("/streams", json={"sql": 'CREATE STREAM from_ui () WITH (TYPE="memory", DATASOURCE="t")'},
                     headers={**AUTH, "Origin": UI})
    assert (r.status_code, r.text) == (201, "Stream from_ui is created.")
    assert r.headers["access-control-allow-origin"] == UI
    own = f"http://127.0.0.1:{guarded.port}"  # /docs, served by the server itself
    r = guarded.delete("/streams/from_ui", headers={**AUTH, "Origin": own})
    assert (r.status_code, r.text) == (200, "Stream from_ui is dropped.")


# ---------------------------------------------------------------- the token on reads


def test_with_a_token_reads_need_it_too_but_ping_and_the_docs_do_not(guarded):
    _error(guarded.get("/rules"), 401, "Unauthorized",
           "GET requests to this server need a bearer token: send the header 'Authorization: Bearer <token>' with"
           " the server's token (PLUTINO_TOKEN); to let anyone read without it, set api.public_reads: true in"
           " etc/plutino.yaml (PLUTINO_PUBLIC_READS=1)")
    _error(guarded.post("/streams", json={"sql": "x"}), 401, "Unauthorized",
           "POST requests to this server need a bearer token: send the header 'Authorization: Bearer <token>' with"
           " the server's token (PLUTINO_TOKEN)")
    for path in ("/", "/streams", "/metrics", "/data/export", "/plugins/functions"):
        assert guarded.get(path).status_code == 401, path
    for path in ("/ping", "/openapi.json", "/docs"):
        assert guarded.get(path).status_code == 200, path
    r = guarded.get("/", headers=AUTH)
    assert r.status_code == 200 and r.json()["dataDir"] == str(guarded.data_dir.resolve())


def test_public_reads_open_gets_but_not_writes_exports_or_the_data_dir_path(public):
    r = public.get("/rules")
    assert (r.status_code, r.json()) == (200, [])
    assert public.get("/").json()["dataDir"] == "$PLUTINO_HOME"
    assert public.get("/", headers=AUTH).json()["dataDir"] == str(public.data_dir.resolve())
    _error(public.post("/streams", json={"sql": "x"}), 401, "Unauthorized",
           "POST requests to this server need a bearer token: send the header 'Authorization: Bearer <token>' with"
           " the server's token (PLUTINO_TOKEN); GET requests need none")
    _error(public.get("/data/export"), 401, "Unauthorized",
           "GET /data/export needs the bearer token even though reads are public, because an export holds secrets"
           " unmasked: send the header 'Authorization: Bearer <token>' with the server's token (PLUTINO_TOKEN)")
    assert public.get("/ruleset/export").status_code == 401
    assert public.get("/data/export", headers=AUTH).status_code == 200
    r = public.get("/rules", headers={"Authorization": "Bearer wrong"})  # a wrong token is never let through
    assert r.status_code == 401 and r.json()["message"].startswith("the bearer token is not this server's")


# ---------------------------------------------------------------- secrets masked


def _mqtt_rule(rule_id: str, password: str) -> dict:
    return {"id": rule_id, "sql": "SELECT t FROM sim", "options": {"triggered": False},
            "actions": [{"mqtt": {"server": f"tcp://bob:{password}-in-url@127.0.0.1:1", "topic": "out",
                                  "username": "bob", "password": password}}]}


def test_a_rules_secrets_are_masked_in_get_and_the_cli(guarded):
    r = guarded.post("/rules", json=_mqtt_rule("mq", "mqtt-pw-1"), headers=AUTH)
    assert r.status_code == 201, r.text
    shown = guarded.get("/rules/mq", headers=AUTH).json()
    assert shown["actions"] == [{"mqtt": {"server": f"tcp://bob:{MASK}@127.0.0.1:1", "topic": "out",
                                          "username": "bob", "password": MASK}}]
    result = CliRunner().invoke(cli, ["rule", "describe", "mq", "--url", guarded.url], env={"PLUTINO_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert MASK in result.output and "mqtt-pw-1" not in result.output


def test_a_mask_with_no_stored_value_behind_it_is_refused(guarded):
    r = guarded.post("/rules", json=_mqtt_rule("mq_new", MASK), headers=AUTH)
    assert r.status_code == 400
    assert r.json()["message"] == (
        f"'actions[0].mqtt.password' of rule 'mq_new' is {MASK}, a masked secret, and {MASK} keeps a stored value"
        " only when a rule is updated (PUT /rules/{id}); send the secret itself")
    assert guarded.get("/rules/mq_new", headers=AUTH).status_code == 404


def test_a_put_that_sends_the_masks_back_keeps_the_secrets_and_the_sink_still_uses_them(guarded, listener):
    rule = {"id": "leaky", "sql": "SELECT t FROM sim",
            "actions": [{"rest": {"url": f"{listener.url}/in?access_token=query-secret-7", "debugResp": True,
                                  "headers": {"Authorization": "Bearer header-secret-7"}}}]}
    r = guarded.post("/rules", json=rule, headers=AUTH)
    assert r.status_code == 201, r.text
    wait_for(lambda: listener.seen, "the rest sink's first request")
    shown = guarded.get("/rules/leaky", headers=AUTH).json()
    assert shown["actions"][0]["rest"]["url"] == f"{listener.url}/in?access_token={MASK}"
    assert shown["actions"][0]["rest"]["headers"] == {"Authorization": MASK}

    shown["sql"] = "SELECT t, t * 2 AS t2 FROM sim"  # an edit made on what GET showed
    r = guarded.put("/rules/leaky", json=shown, headers=AUTH)
    assert (r.status_code, r.text) == (200, "Rule leaky was updated successfully.")
    listener.seen.clear()
    wait_for(lambda: listener.seen, "the updated rule's first request")
    assert listener.seen[-1] == ("/in?access_token=query-secret-7", "Bearer header-secret-7")
    again = guarded.get("/rules/leaky", headers=AUTH).json()
    assert again["sql"] == shown["sql"] and again["actions"] == shown["actions"]
    # an export keeps the real values (so that importing it gives a working server), behind the token
    exported = guarded.get("/data/export", headers=AUTH).json()
    assert json.loads(exported["rules"]["leaky"])["actions"] == rule["actions"]
    assert guarded.delete("/rules/leaky", headers=AUTH).status_code == 200


def test_conf_key_secrets_are_masked_and_kept_through_a_masked_put(guarded):
    path = "/metadata/sinks/mqtt/confKeys/secured"
    body = {"server": "tcp://carol:ck-url-pw@127.0.0.1:1883", "password": "ck-pw-3", "qos": 1}
    assert guarded.put(path, json=body, headers=AUTH).status_code == 200
    shown = guarded.get(path, headers=AUTH).json()
    assert shown == {"server": f"tcp://carol:{MASK}@127.0.0.1:1883", "password": MASK, "qos": 1}
    assert guarded.put(path, json={**shown, "qos": 0}, headers=AUTH).status_code == 200
    exported = guarded.get("/data/export", headers=AUTH).json()
    assert json.loads(exported["sinkConfig"]["mqtt"])["secured"] == {**body, "qos": 0}


def test_a_plugins_install_url_is_masked_in_get_and_in_the_log(guarded, uploads):
    url = (uploads / "echo.zip").as_uri() + "?access_token=plugin-secret-9"
    r = guarded.post("/plugins/functions", json={"name": "echo", "file": url}, headers=AUTH)
    assert (r.status_code, r.text) == (201, "function plugin echo is created")
    source = guarded.get("/plugins/functions/echo", headers=AUTH).json()["source"]
    assert source == (uploads / "echo.zip").as_uri() + f"?access_token={MASK}"


def test_no_secret_reaches_the_log(guarded):
    """Runs after the tests above, which logged their installs, rules and sinks' answers."""
    logged = guarded.output() + (guarded.data_dir / "log" / "plutino.log").read_text()
    assert "access_token=******" in logged  # the rest sink's debugResp lines, the install's line
    for secret in ("query-secret-7", "header-secret-7", "plugin-secret-9", "mqtt-pw-1", TOKEN):
        assert secret not in logged, secret
