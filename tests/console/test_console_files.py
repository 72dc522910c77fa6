"""The console's files as the app serves them (in process, no browser): at /ui, open without
the token while the API behind them still needs it, only the folder's own files, with their
types and a Content-Security-Policy; ``GET /`` stays eKuiper's JSON."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette's note about httpx2 concerns TestClient's transport only
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from plutino.api import create_app
from plutino.api.access import AccessSettings
from plutino.api.console import STATIC
from plutino.host import Host

TOKEN = "console-files-token"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    host = Host(tmp_path / "data")
    host.start()
    try:
        with TestClient(create_app(host, AccessSettings(token=TOKEN)), base_url="http://127.0.0.1:9081") as c:
            yield c
    finally:
        host.close()


def test_the_console_is_open_and_the_api_behind_it_is_not(client):
    for path in ("/ui", "/ui/"):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
        assert '<script type="module" src="/ui/app.js">' in r.text
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert client.get("/rules").status_code == 401
    assert client.get("/rules", headers={"Authorization": f"Bearer {TOKEN}"}).json() == []
    r = client.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.headers["content-type"] == "application/json" and set(r.json()) >= {"version", "upTimeSeconds"}
    assert all(not p.startswith("/ui") for p in client.get("/openapi.json").json()["paths"])


def test_every_file_the_page_loads_is_served_with_its_type(client):
    wanted = {"index.html"}
    for name in sorted(STATIC.iterdir()):
        text = name.read_text(encoding="utf-8")
        wanted |= set(re.findall(r'(?:src|href)="/ui/([\w.]+)"', text))
        wanted |= set(re.findall(r'from "\./([\w.]+)"', text))
    assert wanted == {p.name for p in STATIC.iterdir()}, "a file is not loaded, or one loaded is missing"
    types = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
    for name in wanted:
        r = client.get(f"/ui/{name}")
        assert r.status_code == 200, name
        assert r.headers["content-type"].startswith(types[Path(name).suffix])
        assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/ui/nope.js", "/ui/__init__.py", "/ui/..%2F__init__.py", "/ui/.hidden.js",
                                  "/ui/static/app.js"])
def test_nothing_else_is_served(client, path):
    assert client.get(path).status_code == 404
