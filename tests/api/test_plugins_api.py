"""/plugins, /plugins/udfs and /metadata in process."""

from __future__ import annotations

import zipfile

from .api_helpers import install


def test_function_plugin_is_installed_listed_described_checked_and_deleted(client, packages):
    url = packages["echo"].as_uri()
    r = client.post("/plugins/functions", json={"name": "echo", "file": url})
    assert (r.status_code, r.text) == (201, "function plugin echo is created")
    assert client.get("/plugins/functions").json() == ["echo"]
    described = client.get("/plugins/functions/echo").json()
    assert {k: described[k] for k in ("name", "version", "functions", "status")} == {
        "name": "echo", "version": "1.0.0", "functions": ["echo", "countPlusOne"], "status": "loaded"}
    assert described["source"] == url

    checked = client.get("/plugins/functions/echo/check").json()
    assert checked["ok"] is True and checked["name"] == "echo" and checked["status"] == "loaded"
    assert [f["name"] for f in checked["functions"]] == ["echo", "countPlusOne"]

    assert client.get("/plugins/udfs").json() == ["countPlusOne", "echo"]
    assert client.get("/plugins/udfs/countPlusOne").json() == {"name": "countPlusOne", "plugin": "echo"}
    r = client.post("/plugins/functions/echo/register", json={"functions": ["echo"]})
    assert (r.status_code, r.text) == (200, "function plugin echo function list is registered")

    r = client.delete("/plugins/functions/echo")
    assert (r.status_code, r.text) == (200, "function plugin echo is deleted")
    assert client.get("/plugins/functions").json() == []
    assert client.get("/plugins/udfs").json() == []


def test_source_and_sink_descriptions_have_no_function_list(client, packages):
    install(client, packages, "random", "file")
    assert "functions" not in client.get("/plugins/sources/random").json()
    assert client.get("/plugins/sinks").json() == ["file"]


def test_update_installs_a_new_version(client, packages, echo_v2):
    install(client, packages, "echo")
    r = client.put("/plugins/functions/echo", json={"name": "echo", "file": echo_v2.as_uri()})
    assert (r.status_code, r.text) == (200, "function plugin echo is updated to 1.1.0")
    assert client.get("/plugins/functions/echo").json()["version"] == "1.1.0"
    r = client.put("/plugins/functions/echo", json={"file": echo_v2.as_uri()})  # the same version again
    assert r.status_code == 400 and "which is the version installed" in r.json()["message"]


def test_install_errors(client, packages, tmp_path):
    url = packages["echo"].as_uri()
    r = client.post("/plugins/functions", json={"file": url})
    assert r.status_code == 400 and r.json()["message"].startswith('the body needs the plugin\'s "name"')
    r = client.post("/plugins/functions", json={"name": "echo"})
    assert r.status_code == 400 and r.json()["message"].startswith('the body needs "file"')
    r = client.post("/plugins/sinks", json={"name": "echo", "file": url})
    assert r.status_code == 400
    assert r.json()["message"] == ("package echo.zip holds a function plugin, but it is being installed as a sink;"
                                   " install it under /plugins/functions (plutino plugin install function ...)")
    assert client.post("/plugins/functions", json={"name": "echo", "file": url}).status_code == 201
    r = client.post("/plugins/functions", json={"name": "echo", "file": url})
    assert r.status_code == 409
    assert r.json()["message"] == ("function plugin echo is already installed (version 1.0.0); to replace it use"
                                   " PUT /plugins/functions/echo, or DELETE it first")


def test_a_bad_plugin_zip_is_400_and_changes_nothing(client, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"this is not a zip file")
    r = client.post("/plugins/functions", json={"name": "bad", "file": bad.as_uri()})
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == 1000 and body["type"] == "PackageError"
    assert body["message"] == ("package bad.zip is not a zip file, or a damaged or truncated one (22 bytes); give the"
                               " path or URL of a .zip made by `plutino plugin pack`, or download it again")
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w"):
        pass
    r = client.post("/plugins/functions", json={"name": "empty", "file": empty.as_uri()})
    assert r.status_code == 400 and r.json()["type"] == "PackageError"
    assert client.get("/plugins/functions").json() == []


def test_unknown_plugins_and_functions_are_404(client):
    for path in ("/plugins/functions/nope", "/plugins/sources/nope/check", "/plugins/udfs/nope"):
        r = client.get(path)
        assert r.status_code == 404 and r.json()["error"] == 1002, path
    assert client.get("/plugins/sinks/nope").json()["message"] == (
        "sink plugin nope is not installed; installed sink plugins: none; install it with POST /plugins/sinks")
    assert client.delete("/plugins/sinks/nope").status_code == 404
    assert client.post("/plugins/functions/nope/register", json={"functions": []}).status_code == 404


def test_a_plugin_used_by_a_running_rule_is_deleted_only_with_force(client, packages):
    install(client, packages, "echo")
    client.post("/streams", json={"sql": 'CREATE STREAM s () WITH (TYPE="memory", DATASOURCE="t-force")'})
    client.post("/rules", json={"id": "r", "sql": "SELECT echo(a) FROM s", "actions": [{"log": {}}]})
    r = client.delete("/plugins/functions/echo")
    assert r.status_code == 409
    assert r.json()["message"] == ("function plugin echo is used by running rule(s) r; stop or delete them first,"
                                   " or delete with ?force=true, which stops them")
    r = client.delete("/plugins/functions/echo?force=true")
    assert (r.status_code, r.text) == (200, "function plugin echo is deleted; stopped rules r")
    stopped = client.get("/rules/r/status").json()
    assert (stopped["status"], stopped["message"]) == ("stopped", "canceled manually")


def test_metadata_serves_each_plugins_json(client, packages):
    install(client, packages, "random", "fastmath")
    sources = client.get("/metadata/sources").json()
    assert sources[0]["name"] == "random" and sources[0]["type"] == "native"
    assert {"memory", "mqtt", "file"} <= {s["name"] for s in sources if s["type"] == "builtin"}
    random = client.get("/metadata/sources/random").json()
    assert random["name"] == "random" and "about" in random
    functions = client.get("/metadata/functions/fastmath").json()
    assert [f["name"] for f in functions["functions"]] == ["mul2add1", "upperAscii"]
    builtin = client.get("/metadata/functions/builtin").json()
    assert "count" in [f["name"] for f in builtin["functions"]]
    assert {s["name"] for s in client.get("/metadata/sinks").json()} >= {"log", "memory"}
    assert client.get("/metadata/sinks/nope").status_code == 404


def test_an_installed_sink_takes_a_builtins_name_and_gives_it_back_when_deleted(client, host, packages):
    assert getattr(host.registry.find("sink", "file"), "builtin", False) is True
    install(client, packages, "file")
    assert host.registry.find("sink", "file").path.endswith("file@v1.0.0.so")
    assert [m["type"] for m in client.get("/metadata/sinks").json() if m["name"] == "file"] == ["native"]
    assert client.delete("/plugins/sinks/file").status_code == 200
    assert getattr(host.registry.find("sink", "file"), "builtin", False) is True
