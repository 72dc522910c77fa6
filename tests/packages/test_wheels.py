"""Plugins as pip packages: real wheels built by setuptools and scikit-build-core from
`plutino plugin new --packaging wheel` projects, installed by pip into throwaway environments,
found by the host through their entry points, used by rules, pinned, uninstalled."""

from __future__ import annotations

import base64
import hashlib
import importlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pyarrow as pa
import pytest
from helpers import wait_for
from plutino.engine import RuleManager
from plutino.io.memory import MemoryBroker, MemorySinkPlugin, MemorySourcePlugin
from plutino.native.exports import extra_exports
from plutino.packages.format import PackageConflict, PackageError, pack
from plutino.packages.manager import PluginManager
from plutino.packages.scaffold import new_project
from plutino.packages.wheels import discover
from wheel_helpers import CPYTHON, PLATFORM, bad_abi_project, build_wheels, cpp_project, make_env, pip_in, run

from package_helpers import subprocess_env

ABI_REFUSAL = ("plugin {path} refused: built for ABI 2.0, this host speaks ABI 1.1 (plutino-contract 1.x);"
               " rebuild the plugin against plutino-contract 1.x")


@pytest.fixture(scope="session")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("wheel-projects")
    return {
        "wheel_c": new_project("wheel_c", "function", "c", root / "wheel_c", "wheel", "setuptools"),
        "wheel_cy": new_project("wheel_cy", "function", "cython", root / "wheel_cy", "wheel", "setuptools"),
        "wheel-sk": new_project("wheel-sk", "function", "c", root / "wheel-sk", "wheel", "scikit-build"),
        "wheel_bad_abi": bad_abi_project(root),
        "cpp_text": cpp_project(root),
    }


@pytest.fixture(scope="session")
def wheels(projects: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The five wheels, built once by one `pip wheel`: by plugin name."""
    built = build_wheels(list(projects.values()), tmp_path_factory.mktemp("wheelhouse"))
    return {name: built[f"plutino_{name.replace('-', '_')}"] for name in projects}


@pytest.fixture(scope="session")
def site(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway environment's site-packages with all five wheels installed (read only)."""
    return make_env(tmp_path_factory.mktemp("env") / "all", list(wheels.values()))


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch):
    """Put a site-packages on this process's sys.path, as if this Python had them installed."""
    def add(folder: Path) -> None:
        monkeypatch.syspath_prepend(str(folder))
        importlib.invalidate_caches()
    return add


def test_the_wheels_carry_the_plugin_in_its_package_and_declare_it(wheels):
    names = {name: wheel.name for name, wheel in wheels.items()}
    assert names == {
        "wheel_c": f"plutino_wheel_c-0.1.0-py3-none-{PLATFORM}.whl",     # C: no Python needed
        "wheel_cy": f"plutino_wheel_cy-0.1.0-{CPYTHON}-{CPYTHON}-{PLATFORM}.whl",  # Cython: this CPython
        "wheel-sk": f"plutino_wheel_sk-0.1.0-py3-none-{PLATFORM}.whl",
        "wheel_bad_abi": f"plutino_wheel_bad_abi-1.0.0-py3-none-{PLATFORM}.whl",
        "cpp_text": f"plutino_cpp_text-1.0.0-py3-none-{PLATFORM}.whl",   # C++: no Python either
    }
    with zipfile.ZipFile(wheels["wheel_c"]) as whl:
        assert sorted(n for n in whl.namelist() if not n.endswith((".dist-info/RECORD", "METADATA", "WHEEL"))) == [
            "plutino_wheel_c-0.1.0.dist-info/entry_points.txt", "plutino_wheel_c-0.1.0.dist-info/top_level.txt",
            "plutino_wheel_c/__init__.py", "plutino_wheel_c/wheel_c.so"]
        assert whl.read("plutino_wheel_c-0.1.0.dist-info/entry_points.txt").decode().split() == [
            "[plutino.plugins]", "wheel_c", "=", "plutino_wheel_c:wheel_c.so", "[function]"]


def test_each_plugin_exports_only_its_entry_and_needs_no_python_unless_cython(site):
    found, refused = discover([str(site)])
    assert refused == []
    by_name = {p.name: Path(p.path) for p in found}
    assert sorted(by_name) == ["cpp_text", "wheel-sk", "wheel_bad_abi", "wheel_c", "wheel_cy"]
    assert by_name["wheel-sk"] == site / "plutino_wheel_sk" / "wheel_sk.so"
    for name in ("wheel_c", "wheel_cy", "wheel-sk", "cpp_text"):  # C++'s std:: templates too
        assert extra_exports(by_name[name]) == [], name
        needed = subprocess.run(["readelf", "-d", str(by_name[name])], capture_output=True, text=True).stdout
        assert "libpython" not in needed and "RUNPATH" not in needed and "RPATH" not in needed, needed


def test_the_host_finds_the_wheels_and_a_rule_uses_their_functions(site, on_path, home):
    on_path(site)
    manager = PluginManager(home)
    try:
        assert manager.load_all() == {
            "loaded": ["function/cpp_text", "function/wheel-sk", "function/wheel_c", "function/wheel_cy"],
            "failed": ["sink/wheel_bad_abi"]}
        info = manager.describe("function", "wheel_cy")
        assert {k: info[k] for k in ("version", "status", "abi", "functions", "file", "source")} == {
            "version": "0.1.0", "status": "loaded", "abi": "1.1", "functions": ["wheel_cy"],
            "file": str(site / "plutino_wheel_cy" / "wheel_cy.so"), "source": "wheel plutino-wheel-cy 0.1.0"}
        assert info["platform"]["runtime"] == CPYTHON
        assert manager.udfs() == ["mean_length", "parse_int", "title_case", "wheel_c", "wheel_cy", "wheel_sk"]

        broker = MemoryBroker()
        manager.registry.register(MemorySourcePlugin(broker))
        manager.registry.register(MemorySinkPlugin(broker))
        rules = RuleManager(manager.registry)
        try:
            out = broker.subscribe("out")
            rules.create_stream('CREATE STREAM s (x FLOAT, s STRING) WITH (TYPE="memory", DATASOURCE="in")')
            rules.create_rule({"id": "r", "sql": "SELECT wheel_c(x) AS c, wheel_cy(x) AS cy, wheel_sk(x) AS sk,"
                                                 " title_case(s) AS t FROM s",
                               "actions": [{"memory": {"topic": "out"}}]})
            broker.publish("in", pa.RecordBatch.from_pylist([{"x": 1.5, "s": "hello wheel"}, {"x": None, "s": None}]))
            batch = wait_for(lambda: out.get(timeout=0.05), "the rule's output")
            assert batch.to_pylist() == [{"c": 3.0, "cy": 3.0, "sk": 3.0, "t": "Hello Wheel"},
                                         {"c": None, "cy": None, "sk": None, "t": None}]
        finally:
            rules.shutdown()
    finally:
        manager.store.close()


def test_a_wheel_whose_plugin_has_a_wrong_abi_is_refused_with_the_usual_message(site, on_path, home):
    on_path(site)
    path = site / "plutino_wheel_bad_abi" / "wheel_bad_abi.so"
    proc = subprocess.run([sys.executable, "-m", "plutino", "plugin", "list", "--data-dir", str(home)],
                          capture_output=True, text=True, env=subprocess_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "function  cpp_text                 1.0.0      loaded  (title_case, parse_int, mean_length)",
        "function  wheel-sk                 0.1.0      loaded  (wheel_sk)",
        "function  wheel_c                  0.1.0      loaded  (wheel_c)",
        "function  wheel_cy                 0.1.0      loaded  (wheel_cy)",
        "sink      wheel_bad_abi                       failed  error: " + ABI_REFUSAL.format(path=path),
    ]
    manager = PluginManager(home)
    try:
        manager.load_all()
        assert manager.describe("sink", "wheel_bad_abi")["source"] == "wheel plutino-wheel-bad-abi 1.0.0"
        with pytest.raises(PackageError) as info:
            manager.plugin("sink", "wheel_bad_abi")
        assert str(info.value) == "sink plugin wheel_bad_abi failed to load: " + ABI_REFUSAL.format(path=path)
    finally:
        manager.store.close()


def test_a_zip_plugin_keeps_its_name_and_the_wheel_of_that_name_is_refused(site, on_path, home, tmp_path):
    so = site / "plutino_wheel_c" / "wheel_c.so"
    manager = PluginManager(home)
    try:
        assert manager.load_all() == {"loaded": [], "failed": []}  # the wheels are not on the path yet
        manager.install("function", "wheel_c", str(pack(so, tmp_path / "wheel_c.zip")))
        on_path(site)
        manager.sync_wheels()
        assert manager.wheel_refusals == [
            f"function plugin wheel_c of the wheel plutino-wheel-c 0.1.0 ({so}) is refused: the package installed"
            " function plugin wheel_c 0.1.0 (plugins/functions/wheel_c@v0.1.0.so) has that name; keep one:"
            " pip uninstall plutino-wheel-c, or plutino plugin delete function wheel_c and restart the host"]
        assert manager.describe("function", "wheel_c")["source"] == str(tmp_path / "wheel_c.zip")
        # and the other way round: pip's plugins are pip's to change
        cy = site / "plutino_wheel_cy" / "wheel_cy.so"
        with pytest.raises(PackageConflict) as conflict:
            manager.install("function", "wheel_cy", str(pack(cy, tmp_path / "wheel_cy.zip")))
        assert str(conflict.value) == (
            f"function plugin wheel_cy is installed from the wheel plutino-wheel-cy 0.1.0 ({cy}); to install the"
            " package instead, pip uninstall plutino-wheel-cy, then restart the host")
        with pytest.raises(PackageError) as refused:
            manager.delete("function", "wheel_cy")
        assert str(refused.value) == (
            f"function plugin wheel_cy is installed from the wheel plutino-wheel-cy 0.1.0 ({cy}), which pip"
            " manages; remove it with pip uninstall plutino-wheel-cy, then restart the host")
    finally:
        manager.store.close()


def test_the_pin_file_round_trips_and_check_names_the_drift(site, wheels, home, tmp_path):
    # a zip (wheel-sk's .so, packed) and a wheel (wheel_c, in an environment of its own)
    only_c = make_env(tmp_path / "env", [wheels["wheel_c"]])
    cli = [sys.executable, "-m", "plutino", "plugin"]
    run([*cli, "install", str(pack(site / "plutino_wheel_sk" / "wheel_sk.so", tmp_path / "sk.zip")),
         "--data-dir", str(home)])
    env = {**subprocess_env(), "PYTHONPATH": f"{only_c}:{subprocess_env()['PYTHONPATH']}"}
    pinned = subprocess.run([*cli, "pin", "--data-dir", str(home)], capture_output=True, text=True, env=env)
    assert pinned.returncode == 0, pinned.stderr
    c_sha = discover([str(only_c)])[0][0].sha256
    sk_sha = next(p.sha256 for p in discover([str(site)])[0] if p.name == "wheel-sk")
    assert pinned.stdout.splitlines()[2:] == [
        f"function wheel-sk==0.1.0 sha256={sk_sha} contract=1.1.0 from=zip",
        f"function wheel_c==0.1.0 sha256={c_sha} contract=1.1.0 from=wheel:plutino-wheel-c==0.1.0",
    ]
    pins = tmp_path / "plutino-plugins.txt"
    pins.write_text(pinned.stdout)

    def check(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, "check", "--against", str(pins), "--data-dir", str(home)],
                              capture_output=True, text=True, env=environment)

    same = check(env)
    assert (same.returncode, same.stdout) == (0, f"the 2 installed plugins are the ones {pins} pins\n")
    again = subprocess.run([*cli, "pin", "--data-dir", str(home)], capture_output=True, text=True, env=env)
    assert again.stdout == pinned.stdout

    pins.write_text(pinned.stdout.replace("wheel_c==0.1.0 sha256=" + c_sha, "wheel_c==0.0.9 sha256=" + "0" * 64))
    drifted = check(env)
    assert (drifted.returncode, drifted.stdout.splitlines()) == (1, [
        f"the installed plugins drift from {pins} (1 of 2):",
        f"  function plugin wheel_c: version 0.1.0, pinned 0.0.9; sha256 {c_sha[:12]}..., pinned 000000000000...",
    ])
    pip_in(tmp_path / "env", "uninstall", "-y", "plutino-wheel-c")
    gone = check(env)
    assert (gone.returncode, gone.stdout.splitlines()[1:]) == (1, [
        "  function plugin wheel_c: pinned (0.0.9, from wheel:plutino-wheel-c==0.1.0), not installed"])
    pins.write_text("function wheel_c 0.1.0\n")
    bad = check(env)
    assert (bad.returncode, bad.stderr) == (2, (
        f"error: {pins} line 1: 'function wheel_c 0.1.0' is not a pin (KIND NAME==VERSION sha256=SO_SHA256"
        " contract=VERSION from=zip|wheel:DIST==VERSION); write the file with `plutino plugin pin`\n"))


def test_a_server_runs_a_rule_on_a_wheel_and_after_pip_uninstall_and_a_restart_says_why_it_stopped(
        wheels, tmp_path):
    from api.api_helpers import ServerProcess
    from api.api_helpers import subprocess_env as server_env

    env_dir = tmp_path / "env"
    site = make_env(env_dir, [wheels["wheel_c"], wheels["wheel_bad_abi"]])
    data = tmp_path / "data"
    (data / "etc" / "sources").mkdir(parents=True)
    (data / "etc" / "sources" / "simulator.yaml").write_text("default:\n  interval: 20\n  data: [{x: 1.5}]\n")
    path = {"PYTHONPATH": f"{site}:{server_env()['PYTHONPATH']}"}
    server = ServerProcess(data, env=path).start()
    out = tmp_path / "out.jsonl"
    try:
        assert server.get("/plugins/functions").json() == ["wheel_c"]
        assert server.get("/plugins/sinks/wheel_bad_abi").json()["status"] == "failed"
        assert server.get("/ping").status_code == 200  # the refused wheel took nothing down
        r = server.post("/plugins/functions", json={"name": "wheel_c", "file": "file:///nowhere/wheel_c.zip"})
        assert (r.status_code, r.json()["message"]) == (409, (
            f"function plugin wheel_c is installed from the wheel plutino-wheel-c 0.1.0"
            f" ({site}/plutino_wheel_c/wheel_c.so); to install the package instead, pip uninstall"
            " plutino-wheel-c, then restart the host"))
        assert server.post("/streams", json={"sql": 'CREATE STREAM t (x FLOAT) WITH (TYPE="simulator")'}).status_code == 201
        r = server.post("/rules", json={"id": "r1", "sql": "SELECT wheel_c(x) AS y FROM t",
                                        "actions": [{"file": {"path": str(out)}}]})
        assert r.status_code == 201, r.text
        wait_for(lambda: out.exists() and '"y":3.0' in out.read_text().replace(" ", ""), f"rows in {out}")
        # a CLI whose Python lacks the wheel reads the served data dir, and leaves the server's records be
        pinned = run([sys.executable, "-m", "plutino", "plugin", "pin", "--data-dir", str(data)]).stdout
        assert [line.split("==")[0] for line in pinned.splitlines()[2:]] == ["function wheel_c", "sink wheel_bad_abi"]
    finally:
        assert server.stop() == 0
    pip_in(env_dir, "uninstall", "-y", "plutino-wheel-c")
    server = ServerProcess(data, env=path).start()
    try:
        assert server.get("/plugins/functions").json() == []
        status = server.get("/rules/r1/status").json()
        assert (status["status"], status["message"]) == ("stopped", (
            "unknown function 'wheel_c' at line 1, col 8; no built-in or installed plugin has it; install the plugin"
            " that provides it (built-in and plugin functions: see GET /plugins/udfs)")), status
    finally:
        server.stop()


def test_a_new_wheel_project_builds_tests_and_loads_unchanged(projects):
    project = projects["wheel_c"]
    assert sorted(p.relative_to(project).as_posix() for p in project.rglob("*")
                  if p.is_file() and "build" not in p.parts and ".egg-info" not in str(p)) == [
        "README.md", "plutino_wheel_c/__init__.py", "pyproject.toml", "setup.py", "test_wheel_c.py", "wheel_c.c"]
    assert sorted(p.name for p in projects["wheel-sk"].iterdir() if p.is_file()) == [
        "CMakeLists.txt", "README.md", "pyproject.toml", "test_wheel-sk.py", "wheel-sk.c"]
    proc = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)], cwd=project)
    assert "2 passed" in proc.stdout


def test_new_refuses_a_build_it_has_no_template_for(tmp_path):
    with pytest.raises(PackageError) as info:
        new_project("cy", "function", "cython", tmp_path / "cy", "wheel", "scikit-build")
    assert str(info.value) == ("there is no scikit-build template for a cython plugin; a Cython plugin builds with"
                               " --build setuptools (or, as a zip, with --packaging zip)")


def test_a_setuptools_build_that_does_not_declare_its_plugin_stops_and_says_what_to_add(tmp_path):
    project = new_project("undeclared", "function", "c", tmp_path / "undeclared", "wheel", "setuptools")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('[project.entry-points."plutino.plugins"]', "[x]"))
    proc = subprocess.run([sys.executable, "setup.py", "-q", "build_ext"], cwd=project, capture_output=True,
                          text=True, env=subprocess_env())
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-3:] == [
        "error: the project builds plugin undeclared but does not declare it in the entry-point group"
        " plutino.plugins, so the host would not find it; add to pyproject.toml:",
        '[project.entry-points."plutino.plugins"]',
        '    undeclared = "plutino_undeclared:undeclared.so [function]"',
    ]


def test_entry_points_that_say_too_little_or_name_a_changed_file_are_refused(site, tmp_path):
    so = (site / "plutino_wheel_c" / "wheel_c.so").read_bytes()
    recorded = next(p for p in discover([str(site)])[0] if p.name == "wheel_c")
    _dist(tmp_path, "no-kind", "nk = nk_pkg:nk.so")
    _dist(tmp_path, "not-there", "nt = nt_pkg:nt.so [sink]")
    changed = so + b"\0"
    _dist(tmp_path, "changed", "ch = changed:ch.so [function]", {"changed/ch.so": changed}, recorded.sha256)
    found, refused = discover([str(tmp_path)])
    assert found == []
    assert sorted(refused) == [
        f"wheel changed 1.0: {tmp_path / 'changed' / 'ch.so'} changed since pip installed it (sha256"
        f" {hashlib.sha256(changed).hexdigest()[:12]}..., the wheel's RECORD says"
        f" {recorded.sha256[:12]}...); reinstall it: pip install --force-reinstall changed==1.0",
        "wheel no-kind 1.0 declares plutino plugin nk as 'nk_pkg:nk.so', which does not say where it is and what"
        ' it is; write it as "PACKAGE:FILE.so [KIND]", e.g. nk = "nk_plugin:nk.so [function]" (KIND: source,'
        " sink or function)",
        "wheel not-there 1.0 declares sink plugin nt in nt_pkg/nt.so, which is not among the files it installed;"
        " check the package and file in its entry point ('nt_pkg:nt.so [sink]'), and that the wheel carries the"
        " .so (an editable install does not)",
    ]


def test_two_wheels_declaring_one_plugin_are_both_refused(site, tmp_path):
    so = (site / "plutino_wheel_c" / "wheel_c.so").read_bytes()
    _dist(tmp_path, "other-c", "wheel_c = other_c:wheel_c.so [function]", {"other_c/wheel_c.so": so})
    found, refused = discover([str(site), str(tmp_path)])
    assert sorted(p.name for p in found) == ["cpp_text", "wheel-sk", "wheel_bad_abi", "wheel_cy"]
    assert refused == [
        f"function plugin wheel_c is refused: the wheel plutino-wheel-c 0.1.0 ({site}/plutino_wheel_c/wheel_c.so)"
        f" and wheel other-c 1.0 ({tmp_path}/other_c/wheel_c.so) both declare it; uninstall all but one"
        " (pip uninstall other-c) and restart the host"]


def _dist(root: Path, name: str, entry: str, files: dict[str, bytes] | None = None, sha256: str | None = None) -> None:
    """An installed distribution as pip leaves one: its files, and a dist-info folder with its
    METADATA, entry points and RECORD (``sha256``: the hash RECORD gives every file)."""
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"  # as pip names the folder
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[plutino.plugins]\n{entry}\n")
    record = []
    for rel, data in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        digest = bytes.fromhex(sha256) if sha256 else hashlib.sha256(data).digest()
        record.append(f"{rel},sha256={base64.urlsafe_b64encode(digest).rstrip(b'=').decode()},{len(data)}")
    (info / "RECORD").write_text("".join(line + "\n" for line in record))
