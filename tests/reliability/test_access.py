"""Access: the server listens on 127.0.0.1 unless told otherwise; with a token (PLUTINO_TOKEN)
every request needs it, GETs too unless api.public_reads (tests/api/test_security_http.py has
the rest: Host, Origin, JSON bodies, masked secrets); plugin packages come only from file://
and http(s):// URLs, and file URLs only from the allowed directories (PLUTINO_ALLOWED_FILE_DIRS),
checked end to end over REST against the real server."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import httpx
import pytest

from api.api_helpers import REPO, ServerProcess
from plutino.api import create_app
from plutino.api.access import AccessSettings
from plutino.api.client import Client, ServerError
from plutino.host import Host

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TOKEN = "s3cret-token-for-tests"


def _listening(port: int) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp* show them) listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.append(address)
    return found


def _mutating_operations() -> list[tuple[str, str]]:
    """Every POST, PUT and DELETE of the published spec, path parameters filled in."""
    spec = json.loads((REPO / "docs" / "openapi.json").read_text())
    ops = []
    for path, methods in spec["paths"].items():
        for method in methods:
            if method in ("post", "put", "delete"):
                ops.append((method.upper(), path.replace("{", "").replace("}", "")))
    return ops


def test_the_server_listens_on_loopback_only_by_default(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    try:
        assert _listening(server.port) == ["0100007F"]  # 127.0.0.1, and nothing else
    finally:
        server.stop()


def test_with_a_token_every_mutating_request_needs_it_and_so_do_reads(tmp_path, zips, monkeypatch):
    monkeypatch.setenv("PLUTINO_TOKEN", TOKEN)
    server = ServerProcess(tmp_path / "data").start()
    try:
        ops = _mutating_operations()
        assert len(ops) >= 20
        for method, path in ops:
            r = server.http.request(method, path, json={})
            assert r.status_code == 401, (method, path, r.text)
            assert r.json() == {
                "error": 1000, "type": "Unauthorized",
                "message": f"{method} requests to this server need a bearer token: send the header 'Authorization: "
                           "Bearer <token>' with the server's token (PLUTINO_TOKEN)"}
            assert r.headers["www-authenticate"] == 'Bearer realm="plutino"'
            r = server.http.request(method, path, json={}, headers={"Authorization": "Bearer not-it"})
            assert r.status_code == 401
            assert r.json()["message"] == (
                "the bearer token is not this server's; send 'Authorization: Bearer <token>' with the token the "
                "server was started with (PLUTINO_TOKEN or api.token in etc/plutino.yaml)")
        # nothing was changed by all that; reads need the token too, /ping does not
        good = {"Authorization": f"Bearer {TOKEN}"}
        for path in ("/streams", "/rules", "/plugins/sources", "/plugins/sinks", "/plugins/functions"):
            assert server.get(path).status_code == 401
            r = server.get(path, headers=good)
            assert (r.status_code, r.json()) == (200, [])
        assert server.get("/ping").status_code == 200 and server.get("/metrics", headers=good).status_code == 200

        r = server.post("/plugins/functions", json={"name": "echo", "file": (zips / "echo.zip").as_uri()}, headers=good)
        assert (r.status_code, r.text) == (201, "function plugin echo is created")
        r = server.post("/streams", json={"sql": 'CREATE STREAM s () WITH (TYPE="memory", DATASOURCE="t")'},
                        headers={"Authorization": f"bearer {TOKEN}"})  # the scheme's case does not matter
        assert r.status_code == 201, r.text
        # the CLI's client sends PLUTINO_TOKEN (set in this environment) by itself
        client = Client(server.url)
        assert client.call("POST", "/rules", {"id": "r1", "sql": "SELECT echo(a) AS b FROM s",
                                              "actions": [{"log": {}}]}) == "Rule r1 was created successfully."
        assert client.call("DELETE", "/rules/r1") == "Rule r1 is dropped."
        with pytest.raises(ServerError, match="the bearer token is not this server's"):
            Client(server.url, token="wrong").call("DELETE", "/streams/s")
        assert server.get("/streams", headers=good).json() == ["s"]
    finally:
        server.stop()


def test_without_a_token_nothing_is_asked(tmp_path):
    host = Host(tmp_path / "data")
    host.start()
    try:
        with TestClient(create_app(host, AccessSettings()), raise_server_exceptions=False) as c:
            r = c.post("/streams", json={"sql": 'CREATE STREAM s () WITH (TYPE="memory", DATASOURCE="t")'})
            assert r.status_code == 201, r.text
    finally:
        host.close()


# ---------------------------------------------------------------- where packages may come from


@pytest.fixture
def guarded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A real server whose file:// installs may only read from <tmp>/uploads."""
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    monkeypatch.setenv("PLUTINO_ALLOWED_FILE_DIRS", str(uploads))
    server = ServerProcess(tmp_path / "data").start()
    yield server, uploads
    server.stop()


def _install(server: ServerProcess, url: str, name: str = "echo") -> httpx.Response:
    return server.post("/plugins/functions", json={"name": name, "file": url})


def test_file_urls_are_allowed_only_inside_the_allowed_directories_over_rest(guarded, zips):
    server, uploads = guarded
    outside = zips / "echo.zip"
    r = _install(server, outside.as_uri())
    assert r.status_code == 400
    own = server.data_dir / "uploads"
    assert r.json()["message"] == (
        f"cannot install from {outside.as_uri()!r}: it does not exist, is not a regular file, or is outside the"
        f" folders packages are read from ({own}, {uploads}); put the zip in {own}, or add its folder to"
        " allowed_file_dirs (plutino serve --allow-file-dir DIR)")
    # ../ out of the allowed directory, and a symbolic link in it pointing out, are outside too
    (uploads / "link.zip").symlink_to(outside)
    for url in (f"file://{uploads}/{os.path.relpath(outside, uploads)}", (uploads / "link.zip").as_uri()):
        r = _install(server, url)
        assert r.status_code == 400, r.text
        assert "is outside the folders packages are read from" in r.json()["message"]
    # a plain path is a file too, and is checked the same way
    r = _install(server, str(outside))
    assert r.status_code == 400 and "is outside the folders" in r.json()["message"]
    assert server.get("/plugins/functions").json() == []

    shutil.copy(outside, uploads / "echo.zip")
    r = _install(server, (uploads / "echo.zip").as_uri())
    assert (r.status_code, r.text) == (201, "function plugin echo is created")


def test_other_url_schemes_are_refused_over_rest(guarded):
    server, _ = guarded
    for url in ("ftp://127.0.0.1/echo.zip", "gopher://127.0.0.1/echo.zip",
                "data:application/zip;base64,UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="):
        r = _install(server, url)
        scheme = url.split(":", 1)[0]
        assert r.status_code == 400
        assert r.json() == {"error": 1000, "type": "PackageError",
                            "message": f"cannot install from {url!r}: scheme {scheme!r} is not supported; use a "
                                       "local path, file:///path/name.zip or http(s)://host/name.zip"}
    assert server.get("/plugins/functions").json() == []
