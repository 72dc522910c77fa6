"""Issue 16's package attacks over real HTTP, against one real server with the default package
settings (not the test session's allowances), a token, ``require_signature: always`` in its
etc/plutino.yaml and one folder given with ``--allow-file-dir``: the store is never read as a
package and the answer quotes nothing, a loopback URL is refused, signing keys are managed
over REST with the token, a signed package installs and an unsigned one does not, and
concurrent installs of one plugin answer 409."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from plutino.packages.format import pack
from plutino.packages.signing import generate_key

from .api_helpers import ServerProcess

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def packages(plugin_build: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Signed and unsigned packages in the folder the server is told to allow, and the key."""
    keys = tmp_path_factory.mktemp("keys")
    generate_key(keys / "alice.key")
    folder = tmp_path_factory.mktemp("allowed")
    return {
        "alice.pub": keys / "alice.pub",
        "file": pack(plugin_build / "sinks" / "file.so", folder / "file.zip", sign_key=keys / "alice.key"),
        "echo-unsigned": pack(plugin_build / "functions" / "echo.so", folder / "echo.zip"),
        "random": pack(plugin_build / "sources" / "random.so", folder / "random.zip", sign_key=keys / "alice.key"),
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, packages: dict[str, Path]) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("security-api") / "data"
    (data / "etc").mkdir(parents=True)
    (data / "etc" / "plutino.yaml").write_text("packages:\n  require_signature: always\n")
    env = {"PLUTINO_TOKEN": TOKEN, "PLUTINO_ALLOWED_FILE_DIRS": "", "PLUTINO_ALLOW_PRIVATE_ADDRESSES": ""}
    proc = ServerProcess(data, "--allow-file-dir", str(packages["file"].parent), env=env).start()
    assert proc.http is not None
    proc.http.headers.update(AUTH)
    yield proc
    proc.stop()


def _refused(server: ServerProcess, location: str, kind: str = "sink", name: str = "file") -> str:
    r = server.post(f"/plugins/{kind}s", json={"name": name, "file": location})
    assert r.status_code == 400, r.text
    return r.json()["message"]


def test_the_store_is_never_read_as_a_package_and_no_answer_quotes_a_file(server):
    store = server.data_dir / "store.db"
    assert _refused(server, store.as_uri()) == (
        f"cannot install from {store.as_uri()!r}: it is in the data directory, whose own files (store, plugins,"
        f" settings, logs) are never read as a package; put the zip in {server.data_dir / 'uploads'}")
    answers = {loc: _refused(server, loc) for loc in ("file:///etc/passwd", "file:///no/such/thing.zip")}
    for location, message in answers.items():
        assert message == (
            f"cannot install from {location!r}: it does not exist, is not a regular file, or is outside the folders"
            f" packages are read from ({server.data_dir / 'uploads'}, {server.args[1]}); put the zip in"
            f" {server.data_dir / 'uploads'}, or add its folder to allowed_file_dirs (plutino serve"
            " --allow-file-dir DIR)")
    assert server.post("/streams", json={"sql": 'CREATE STREAM s () WITH (TYPE="memory", DATASOURCE="t")'}
                       ).status_code == 201  # the store still takes writes


def test_a_loopback_url_is_refused_before_anything_is_asked_of_it(server):
    for host in ("127.0.0.1", "localhost", "[::1]"):
        url = f"http://{host}:9/file.zip"
        assert _refused(server, url) == (
            f"cannot download {url}: {host.strip('[]')} is a loopback address, and packages are downloaded only from"
            " public addresses; to allow it, set allow_private_addresses (e.g. 'all' or '10.0.0.0/8') in the"
            " packages: section of etc/plutino.yaml or PLUTINO_ALLOW_PRIVATE_ADDRESSES")


def test_trusted_keys_are_added_and_listed_with_the_token(server, packages):
    pem = packages["alice.pub"].read_text()
    anonymous = httpx.post(f"{server.url}/plugins/trusted_keys", json={"name": "alice", "key": pem})
    assert anonymous.status_code == 401
    r = server.post("/plugins/trusted_keys", json={"name": "alice", "key": pem})
    assert r.status_code == 201
    listed = server.get("/plugins/trusted_keys").json()
    assert [(k["name"], k["key"]) for k in listed] == [("alice", pem)]
    assert r.text == f"key alice ({listed[0]['key_id']}) is trusted"
    again = server.post("/plugins/trusted_keys", json={"name": "alice", "key": pem})
    assert again.status_code == 409 and again.json()["message"] == (
        f"a trusted key named alice exists already (key id {listed[0]['key_id']}); delete it first"
        " (DELETE /plugins/trusted_keys/alice) or pick another name")
    gone = server.delete("/plugins/trusted_keys/bob")
    assert gone.status_code == 404 and gone.json()["message"] == "no trusted key is named bob; trusted keys: alice"


def test_a_signed_package_installs_and_an_unsigned_one_is_refused(server, packages):
    if not server.get("/plugins/trusted_keys").json():
        server.post("/plugins/trusted_keys", json={"name": "alice", "key": packages["alice.pub"].read_text()})
    r = server.post("/plugins/sinks", json={"name": "file", "file": packages["file"].as_uri()})
    assert (r.status_code, r.text) == (201, "sink plugin file is created")
    assert _refused(server, packages["echo-unsigned"].as_uri(), "function", "echo") == (
        "package echo.zip is not signed, and this host requires a signature (require_signature = auto: for downloads"
        " once a key is trusted, or always); ask its author for a signed package (plutino plugin pack --sign KEY)"
        " and trust their public key, or set require_signature: never in the packages: section of etc/plutino.yaml")


def test_concurrent_installs_of_one_plugin_answer_409(server, packages):
    if not server.get("/plugins/trusted_keys").json():
        server.post("/plugins/trusted_keys", json={"name": "alice", "key": packages["alice.pub"].read_text()})
    body = {"name": "random", "file": packages["random"].as_uri()}
    answers: list[httpx.Response] = []
    go = threading.Barrier(4)

    def install() -> None:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
            go.wait()
            answers.append(client.post("/plugins/sources", json=body))
    threads = [threading.Thread(target=install) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r.status_code for r in answers) == [201, 409, 409, 409]
    assert {r.json()["message"] for r in answers if r.status_code == 409} <= {
        "source plugin random is being installed or updated by another request right now; wait for it to finish,"
        " then see GET /plugins/sources/random",
        "source plugin random is already installed (version 1.0.0); to replace it use PUT /plugins/sources/random,"
        " or DELETE it first",  # it was installed before the request came in
        "source plugin random is already installed (version 1.0.0); to replace it use update (PUT"
        " /plugins/sources/random, plutino plugin update), or delete it first",  # ... while it waited
    }


def test_the_key_commands_work_on_the_server(server, packages, tmp_path, monkeypatch):
    from click.testing import CliRunner
    from plutino.cli.main import main

    monkeypatch.setenv("PLUTINO_TOKEN", TOKEN)
    generate_key(tmp_path / "bob.key")

    def run(*args: str) -> str:
        result = CliRunner().invoke(main, ["plugin", *args, "--url", server.url])
        assert result.exit_code == 0, result.output
        return result.output
    added = run("trust", str(tmp_path / "bob.pub"))
    key_id = added.split("(")[1].split(")")[0]
    assert added == f"key bob ({key_id}) is trusted\n"
    assert f"{'bob':<24} {key_id}\n" in run("keys")
    assert run("untrust", "bob") == f"key bob ({key_id}) is no longer trusted\n"
    assert "bob" not in run("keys")
