"""Installing the bundled plugins from file:// and http:// URLs, using, updating, deleting them,
and a restart (a new host process on the same data dir) that brings them back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from package_helpers import BUNDLED, rebuild, subprocess_env
from plutino.packages.manager import PluginManager
from plutino.packages.format import PackageError, pack
from plutino_contract.protocols import Context


def use(manager: PluginManager, kind: str, name: str, tmp_path: Path) -> object:
    """Exercise an installed plugin through the manager's loaded object; return what it gave."""
    plugin = manager.plugin(kind, name)
    tmp_path.mkdir(parents=True, exist_ok=True)
    ctx = Context(plugin_name=name)
    if kind == "source":
        src = plugin.create({"interval": 0, "pattern": {"count": 50}, "batch_size": 5, "seed": 1}, ctx)
        try:
            src.open()
            batch = src.next(5.0)
            assert batch is not None and batch.num_rows == 5
            assert all(0 <= v <= 50 for v in batch.column("count").to_pylist())
            return batch.num_rows
        finally:
            src.close()
    if kind == "sink":
        out = tmp_path / f"{name}.jsonl"
        snk = plugin.create({"path": str(out)}, ctx)
        try:
            snk.open()
            snk.write(pa.record_batch({"a": [1, 2]}))
            snk.flush()
        finally:
            snk.close()
        return [json.loads(line) for line in out.read_text().splitlines()]
    calls = {
        "echo": ("echo", [pa.array([1, 2, None])], 3, [1, 2, None]),
        "fastmath": ("mul2add1", [pa.array([1.0, 2.5])], 2, [3.0, 6.0]),
        "geo": ("haversine", [pa.array([0.0]), pa.array([0.0]), pa.array([0.0]), pa.array([0.0])], 1, [0.0]),
    }
    if name == "accumulateWordCount":
        inst = plugin.functions["accumulateWordCount"].create(ctx)
        try:
            out = inst.aggregate([pa.array(["a b", "c d e"]), pa.array([" "])], 2, None, 1)
        finally:
            inst.close()
        assert out.to_pylist() == [5]
        return out.to_pylist()
    fn, args, length, expected = calls[name]
    inst = plugin.functions[fn].create(ctx)
    try:
        out = inst.call(args, length)
    finally:
        inst.close()
    assert out.to_pylist() == expected
    return out.to_pylist()


@pytest.mark.parametrize("kind, name", BUNDLED)
def test_each_bundled_plugin_installs_from_a_file_url_updates_and_deletes(manager, home, zips, tmp_path, kind, name):
    url = (zips / f"{name}.zip").as_uri()
    record = manager.install(kind, name, url)
    assert (record.kind, record.name, record.version, record.status) == (kind, name, "1.0.0", "loaded")
    assert record.file == f"plugins/{kind}s/{name}@v1.0.0.so"
    assert (home / record.file).is_file()
    assert [r.name for r in manager.list(kind)] == [name]
    assert manager.describe(kind, name)["status"] == "loaded"
    first = use(manager, kind, name, tmp_path)

    new_zip = pack(rebuild(kind, name, "1.1.0", tmp_path / "rebuild"), tmp_path / f"{name}-1.1.0.zip")
    updated = manager.update(kind, name, new_zip.as_uri())
    assert (updated.version, updated.file) == ("1.1.0", f"plugins/{kind}s/{name}@v1.1.0.so")
    assert manager.plugin(kind, name).version == "1.1.0"
    assert use(manager, kind, name, tmp_path / "v2") == first
    assert sorted(p.name for p in (home / f"plugins/{kind}s").iterdir()) == [f"{name}@v1.1.0.so"]

    manager.delete(kind, name)
    assert manager.list() == [] and list((home / f"plugins/{kind}s").iterdir()) == []


@pytest.mark.parametrize("kind, name", BUNDLED)
def test_each_bundled_plugin_installs_from_an_http_url(manager, home, http_base, tmp_path, kind, name):
    record = manager.install(kind, name, f"{http_base}/{name}.zip")
    assert record.status == "loaded" and record.source == f"{http_base}/{name}.zip"
    use(manager, kind, name, tmp_path)


def test_describe_tells_everything_about_an_installed_plugin(manager, home, zips, plugin_build):
    from plutino.packages.format import sha256_file

    manager.install("function", "echo", str(zips / "echo.zip"))
    info = manager.describe("function", "echo")
    installed_at = info.pop("installed_at")
    assert installed_at.endswith("+00:00")
    assert info == {
        "name": "echo", "kind": "function", "version": "1.0.0", "status": "loaded", "abi": "1.1",
        "functions": ["echo", "countPlusOne"], "file": "plugins/functions/echo@v1.0.0.so",
        "sha256": sha256_file(plugin_build / "functions" / "echo.so"), "error": None,
        "platform": info["platform"], "config_files": ["etc/functions/echo.json"],
        "source": str(zips / "echo.zip"), "install_output": "",
    }
    assert set(info["platform"]) == {"os", "arch", "libc", "pointer_size"}
    assert manager.udfs() == ["countPlusOne", "echo"]
    assert manager.describe_udf("countPlusOne") == {"name": "countPlusOne", "plugin": "echo"}
    assert manager.registry.function("countplusone").provider is manager.plugin("function", "echo")


def test_config_files_go_to_etc_by_kind(manager, home, zips):
    manager.install("source", "random", str(zips / "random.zip"))
    manager.install("sink", "file", str(zips / "file.zip"))
    assert (home / "etc/sources/random.yaml").read_text().startswith("# Default config")
    assert (home / "etc/sources/random.json").is_file()
    assert (home / "etc/sinks/file.yaml").is_file()
    assert sorted(p.name for p in (home / "plugins/sources").iterdir()) == ["random@v1.0.0.so"]


def test_installing_twice_is_refused_with_the_way_to_update(manager, zips):
    manager.install("function", "echo", str(zips / "echo.zip"))
    with pytest.raises(PackageError) as info:
        manager.install("function", "echo", str(zips / "echo.zip"))
    assert str(info.value) == (
        "function plugin echo is already installed (version 1.0.0); to replace it use update "
        "(PUT /plugins/functions/echo, plutino plugin update), or delete it first")


def test_update_switches_new_instances_to_the_new_version(manager, home, tmp_path_factory, zips):
    manager.install("function", "echo", str(zips / "echo.zip"))
    old = manager.plugin("function", "echo")
    old_inst = old.functions["echo"].create(Context(plugin_name="echo"))
    work = tmp_path_factory.mktemp("rebuild")
    new_zip = pack(rebuild("function", "echo", "1.1.0", work), work / "echo.zip")

    record = manager.update("function", "echo", new_zip.as_uri())

    assert (record.version, record.file) == ("1.1.0", "plugins/functions/echo@v1.1.0.so")
    new = manager.plugin("function", "echo")
    assert new is not old and new.version == "1.1.0"
    assert manager.registry.function("echo").provider is new
    assert manager.describe("function", "echo")["version"] == "1.1.0"
    # the instance made before the update keeps working on the old code
    assert old_inst.call([pa.array([7])], 1).to_pylist() == [7]
    old_inst.close()
    # no rule used the old version, so its file is gone at once
    assert sorted(p.name for p in (home / "plugins/functions").iterdir()) == ["echo@v1.1.0.so"]


def test_an_old_version_in_use_stays_on_disk_until_the_next_start(manager, home, tmp_path_factory, zips):
    manager.install("function", "echo", str(zips / "echo.zip"))
    manager.in_use = lambda kind, name: ["r1"] if (kind, name) == ("function", "echo") else []
    work = tmp_path_factory.mktemp("rebuild")
    manager.update("function", "echo", str(pack(rebuild("function", "echo", "1.1.0", work), work / "echo.zip")))
    files = sorted(p.name for p in (home / "plugins/functions").iterdir())
    assert files == ["echo@v1.0.0.so", "echo@v1.1.0.so"]
    assert manager.store.pending_files() == ["plugins/functions/echo@v1.0.0.so"]

    restarted = PluginManager(home)
    assert restarted.load_all() == {"loaded": ["function/echo"], "failed": []}
    assert sorted(p.name for p in (home / "plugins/functions").iterdir()) == ["echo@v1.1.0.so"]
    assert restarted.store.pending_files() == []


def test_an_update_to_the_same_version_is_refused(manager, zips):
    manager.install("function", "echo", str(zips / "echo.zip"))
    with pytest.raises(PackageError) as info:
        manager.update("function", "echo", str(zips / "echo.zip"))
    assert str(info.value) == (
        "package echo.zip holds function plugin echo version 1.0.0, which is the version installed; an "
        "update needs a new version: raise VERSION in plutino_add_plugin() (CMakeLists.txt), rebuild and "
        "pack again")


def test_updating_a_plugin_that_is_not_installed_is_refused(manager, zips):
    with pytest.raises(PackageError) as info:
        manager.update("function", "echo", str(zips / "echo.zip"))
    assert str(info.value) == ("function plugin echo is not installed, so it cannot be updated; install it "
                               "(POST /plugins/functions, plutino plugin install)")


def test_delete_removes_files_record_and_registration(manager, home, zips):
    manager.install("source", "random", str(zips / "random.zip"))
    assert manager.delete("source", "random") == []
    assert manager.list() == []
    assert manager.registry.find("source", "random") is None
    assert list((home / "plugins/sources").iterdir()) == []
    assert list((home / "etc/sources").iterdir()) == []
    with pytest.raises(PackageError, match="source plugin random is not installed"):
        manager.describe("source", "random")


def test_a_plugin_in_use_is_deleted_only_with_force_which_stops_its_rules(manager, home, zips):
    manager.install("function", "echo", str(zips / "echo.zip"))
    manager.in_use = lambda kind, name: ["r1", "r2"]
    stopped: list[tuple[list[str], str]] = []
    manager.stop_rules = lambda ids, reason: stopped.append((list(ids), reason))
    with pytest.raises(PackageError) as info:
        manager.delete("function", "echo")
    assert str(info.value) == ("function plugin echo is used by rules r1, r2; stop or delete them first, "
                               "or delete with force (?force=true, --force), which stops them")
    assert manager.describe("function", "echo")["status"] == "loaded"
    assert manager.delete("function", "echo", force=True) == ["r1", "r2"]
    assert stopped == [(["r1", "r2"], "stopped: function plugin echo was deleted")]
    assert manager.list() == []


_RESTART = """
import json, sys
from pathlib import Path
import pyarrow as pa
import yaml
from plutino.packages.manager import PluginManager
from plutino_contract.protocols import Context
m = PluginManager(sys.argv[1])
result = m.load_all()
echo = m.plugin("function", "echo").functions["echo"].create(Context(plugin_name="echo"))
default = yaml.safe_load(Path(sys.argv[1], "etc/sources/random.yaml").read_text())["default"]
src = m.plugin("source", "random").create({**default, "interval": 0, "batch_size": 3},
                                          Context(plugin_name="random"))
src.open()
print(json.dumps({"load": result, "list": [[r.kind, r.name, r.version, r.status] for r in m.list()],
                  "echo": echo.call([pa.array(["hi"])], 1).to_pylist(), "rows": src.next(5.0).num_rows}))
"""


def test_a_new_host_process_on_the_same_data_dir_loads_everything_back(manager, home, zips, http_base):
    for kind, name in BUNDLED:
        if name in ("echo", "random"):
            manager.install(kind, name, f"{http_base}/{name}.zip")
        else:
            manager.install(kind, name, (zips / f"{name}.zip").as_uri())
    manager.store.close()
    proc = subprocess.run([sys.executable, "-c", _RESTART, str(home)], capture_output=True, text=True,
                          env=subprocess_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert sorted(out["load"]["loaded"]) == sorted(f"{k}/{n}" for k, n in BUNDLED)
    assert out["load"]["failed"] == []
    assert sorted(out["list"]) == sorted([k, n, "1.0.0", "loaded"] for k, n in BUNDLED)
    assert out["echo"] == ["hi"] and out["rows"] == 3


def test_a_plugin_that_fails_at_start_up_is_listed_as_failed_and_the_rest_load(manager, home, zips):
    manager.install("function", "echo", str(zips / "echo.zip"))
    manager.install("function", "fastmath", str(zips / "fastmath.zip"))
    corrupted = home / "plugins/functions/echo@v1.0.0.so"
    corrupted.unlink()  # never write into a mapped .so: this process still has it loaded
    corrupted.write_bytes(b"not a plugin any more")
    manager.store.close()

    restarted = PluginManager(home)
    assert restarted.load_all() == {"loaded": ["function/fastmath"], "failed": ["function/echo"]}
    info = restarted.describe("function", "echo")
    assert info["status"] == "failed"
    assert info["error"].startswith(
        "function plugin echo: plugins/functions/echo@v1.0.0.so changed since it was installed (sha256 ")
    assert info["error"].endswith(
        "reinstall it: plutino plugin delete function echo, then install its package again")
    assert restarted.plugin("function", "fastmath").functions["mul2add1"] is not None
    with pytest.raises(PackageError, match="function plugin echo failed to load: function plugin echo: "):
        restarted.plugin("function", "echo")
    # a failed plugin can be repaired by deleting it and installing it again
    restarted.delete("function", "echo")
    assert restarted.install("function", "echo", str(zips / "echo.zip")).status == "loaded"


def test_a_missing_file_is_reported_at_start_up(manager, home, zips):
    manager.install("sink", "file", str(zips / "file.zip"))
    (home / "plugins/sinks/file@v1.0.0.so").unlink()
    restarted = PluginManager(home)
    assert restarted.load_all() == {"loaded": [], "failed": ["sink/file"]}
    assert restarted.describe("sink", "file")["error"] == (
        "sink plugin file: its file plugins/sinks/file@v1.0.0.so is missing; reinstall it: plutino "
        "plugin delete sink file, then install its package again")
