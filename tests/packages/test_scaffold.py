"""`plutino plugin new` projects, every language for every kind, build, test, pack, install and
run unchanged."""

from __future__ import annotations

import subprocess
import sys
import time
import tomllib
from pathlib import Path
from xml.etree import ElementTree

import pyarrow as pa
import pytest
from click.testing import CliRunner
from helpers import wait_for
from package_helpers import REPO, subprocess_env
from plutino.cli.main import main
from plutino.engine import BUILTIN_NAMES, RuleManager
from plutino.engine.plugin_config import YamlConfigResolver
from plutino.engine.plugin_props import PluginMetadata
from plutino.packages.format import PackageError, pack
from plutino.packages.scaffold import LANGS, build_project, new_project
from plutino.registry import Registry
from plutino_contract.protocols import Context, EndOfStream

PROJECTS = [(lang, kind) for kind in ("function", "source", "sink") for lang in LANGS]


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """One new project per template, built once."""
    root = tmp_path_factory.mktemp("projects")
    made = {(lang, kind): new_project(f"my_{lang}_{kind}", kind, lang, root / f"my_{lang}_{kind}")
            for lang, kind in PROJECTS}
    for project in made.values():
        build_project(project, quiet=True)
    return made


def test_every_language_has_a_template_for_every_kind():
    assert PROJECTS == [("c", "function"), ("cython", "function"), ("c", "source"), ("cython", "source"),
                        ("c", "sink"), ("cython", "sink")]


def test_a_new_project_has_the_files_of_the_bundled_examples_and_a_readme(projects):
    for (lang, kind), path in projects.items():
        name = path.name
        expected = {"CMakeLists.txt", "README.md", f"{name}.{'pyx' if lang == 'cython' else 'c'}", f"{name}.json",
                    f"test_{name}.py"} | ({f"{name}.yaml"} if kind != "function" else set())
        assert {p.name for p in path.iterdir() if p.name != "build"} == expected, (lang, kind)


def test_the_readme_names_the_extra_that_brings_pytest(projects):
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(dep.startswith("pytest") for dep in extras["dev"]) and any(dep.startswith("cython") for dep in extras["dev"])
    for path in projects.values():
        readme = (path / "README.md").read_text()
        assert "pip install 'plutino[dev]'" in readme and f"test_{path.name}.py" in readme
        assert "$" not in readme  # every placeholder filled


def test_the_cli_makes_cython_sources_and_sinks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for kind in ("source", "sink"):
        result = CliRunner().invoke(main, ["plugin", "new", f"cy_{kind}", "--lang", "cython", "--kind", kind])
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"created {kind} plugin cy_{kind} (cython) in cy_{kind}\n")
        assert (tmp_path / f"cy_{kind}" / f"cy_{kind}.pyx").is_file()


@pytest.fixture(scope="module")
def generated_results(projects: dict[tuple[str, str], Path], tmp_path_factory: pytest.TempPathFactory
                      ) -> tuple[dict[str, list[tuple[str, str]]], str]:
    """Every project's own tests, run as their author runs them (pytest in a child Python), in
    one run: test file -> [(test, outcome)], and pytest's output."""
    report = tmp_path_factory.mktemp("generated") / "junit.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
                           *(str(p) for p in projects.values())],
                          cwd=next(iter(projects.values())).parent, capture_output=True, text=True,
                          env=subprocess_env(), timeout=300)
    results: dict[str, list[tuple[str, str]]] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        results.setdefault(case.get("classname", "").rpartition(".")[2], []).append((case.get("name", ""), outcome))
    return results, proc.stdout + proc.stderr


@pytest.mark.parametrize("lang, kind", PROJECTS)
def test_the_generated_tests_pass_unchanged(projects, generated_results, lang, kind):
    results, output = generated_results
    ran = results.get(f"test_{projects[(lang, kind)].name}", [])
    assert len(ran) >= 2 and all(outcome == "passed" for _, outcome in ran), (ran, output)


@pytest.mark.parametrize("lang, kind", PROJECTS)
def test_new_build_pack_install_use(projects, manager, home, tmp_path, lang, kind):
    project = projects[(lang, kind)]
    name = project.name
    package = pack(project, tmp_path / f"{name}.zip")
    record = manager.install(kind, name, package.as_uri())
    assert (record.name, record.version, record.status) == (name, "0.1.0", "loaded")
    plugin = manager.plugin(kind, name)
    ctx = Context(plugin_name=name)
    if kind == "function":
        assert record.functions == (name,)
        inst = plugin.functions[name].create(ctx)
        assert inst.call([pa.array([1.0, None, 2.5])], 3).to_pylist() == [2.0, None, 5.0]
        inst.close()
    elif kind == "source":
        assert (home / f"etc/sources/{name}.yaml").is_file()
        src = plugin.create({"batch_size": 3, "count": 4, "interval": 0}, ctx)
        src.open()
        assert [src.next(1.0).num_rows, src.next(1.0).num_rows] == [3, 1]
        with pytest.raises(EndOfStream):
            src.next(1.0)
        src.close()
    else:
        out = tmp_path / "sink.txt"
        snk = plugin.create({"path": str(out)}, ctx)
        snk.open()
        snk.write(pa.record_batch({"x": [1, 2]}))
        assert out.read_text() == "2 rows\n"  # written as the batch came, before any flush or close
        snk.write(pa.record_batch({"x": [3]}))
        assert out.read_text() == "2 rows\n1 rows\n"
        snk.close()
        assert out.read_text() == "2 rows\n1 rows\n"


@pytest.mark.parametrize("lang", LANGS)
def test_a_new_source_is_rate_limited(projects, manager, tmp_path, lang):
    """interval (ms, default 1000) spaces the batches: next() waits up to its timeout for the
    next one and says "none yet" (None) when it is not due within it."""
    project = projects[(lang, "source")]
    name = project.name
    manager.install("source", name, str(pack(project, tmp_path / f"{name}.zip")))
    plugin = manager.plugin("source", name)
    ctx = Context(plugin_name=name)
    default = plugin.create({}, ctx)
    try:
        default.open()
        assert default.next(0.0) is not None and default.next(0.1) is None  # one per second by default
    finally:
        default.close()
    src = plugin.create({"interval": 200}, ctx)
    try:
        src.open()
        assert src.next(0.0) is not None
        batches, until = 1, time.monotonic() + 1.0
        while time.monotonic() < until:
            batches += src.next(0.05) is not None
        assert 2 <= batches <= 6  # at 0 ms, then one per 200 ms: at most 6 within the 1.05 s the loop may take
    finally:
        src.close()
    with pytest.raises(Exception, match="interval must be an integer number of ms between 0"):
        plugin.create({"interval": -5}, ctx)


@pytest.mark.parametrize("source_lang, sink_lang", [("c", "cython"), ("cython", "c")])
def test_a_rule_from_a_new_source_to_a_new_sink(projects, manager, home, tmp_path, source_lang, sink_lang):
    """Installed, the pair runs in a rule: the stream's INTERVAL (declared in the source's json)
    paces the source, and the sink's file grows while the rule runs."""
    source, sink = projects[(source_lang, "source")], projects[(sink_lang, "sink")]
    registry = Registry(BUILTIN_NAMES)
    for kind, project in (("source", source), ("sink", sink)):
        manager.install(kind, project.name, str(pack(project, tmp_path / f"{project.name}.zip")))
        registry.register(manager.plugin(kind, project.name))
    etc = home / "etc"
    rules = RuleManager(registry, config_for=YamlConfigResolver({"source": [etc / "sources"], "sink": [etc / "sinks"]}),
                        metadata=PluginMetadata.under(etc))
    out = tmp_path / "out.txt"
    try:
        rules.exec_stream_sql(f'CREATE STREAM s () WITH (TYPE="{source.name}", INTERVAL="100", BATCH_SIZE="3")')
        started = time.monotonic()
        rules.create_rule({"id": "r", "sql": "SELECT id, value FROM s WHERE id >= 0",
                           "actions": [{sink.name: {"path": str(out)}}]})
        wait_for(lambda: out.is_file() and len(out.read_text().splitlines()) >= 3, "three batches in the sink's file")
        assert rules.state("r") == "running"
        time.sleep(max(0.0, started + 1.0 - time.monotonic()))
        lines = out.read_text().splitlines()
        elapsed = time.monotonic() - started
        assert set(lines) <= {"1 rows", "2 rows", "3 rows"}
        assert 3 <= len(lines) <= elapsed / 0.1 + 1  # one batch per 100 ms at most
    finally:
        rules.shutdown()


def test_a_new_version_of_a_project_installs_as_an_update(projects, manager, home, tmp_path):
    project = projects[("c", "function")]
    name = project.name
    manager.install("function", name, str(pack(project, tmp_path / "v1.zip")))
    cmake = project / "CMakeLists.txt"
    original = cmake.read_text()
    try:
        cmake.write_text(original.replace("VERSION 0.1.0", "VERSION 0.2.0"))
        build_project(project, quiet=True)
        record = manager.update("function", name, str(pack(project, tmp_path / "v2.zip")))
    finally:
        cmake.write_text(original)
        build_project(project, quiet=True)
    assert record.version == "0.2.0" and manager.plugin("function", name).version == "0.2.0"
    assert sorted(p.name for p in (home / "plugins/functions").iterdir()) == [f"{name}@v0.2.0.so"]


def test_new_refuses_a_non_empty_directory_and_bad_names(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(PackageError) as info:
        new_project("taken", "function", "c", tmp_path / "taken")
    assert str(info.value) == f"{tmp_path / 'taken'} already exists and is not empty; choose another directory"
    with pytest.raises(PackageError) as info:
        new_project("my-fn", "function", "cython", tmp_path / "x")
    assert str(info.value) == ("a Cython plugin's name is also its module name and must be a Python "
                               "identifier; 'my-fn' is not: use 'my_fn'")
    with pytest.raises(PackageError) as info:
        new_project("src", "source", "rust", tmp_path / "y")
    assert str(info.value) == "unknown language 'rust'; use one of: c, cython"


def test_a_dashed_name_makes_a_valid_c_plugin(tmp_path):
    project = new_project("my-fn", "function", "c", tmp_path / "my-fn")
    (so,) = build_project(project, quiet=True)
    assert so.name == "my-fn.so"
    from plutino.native.loader import load_plugin

    assert list(load_plugin(so, kind="function").functions) == ["my_fn"]


def test_build_reports_a_compiler_error_with_its_output(tmp_path):
    project = new_project("oops", "function", "c", tmp_path / "oops")
    (project / "oops.c").write_text((project / "oops.c").read_text() + "\nthis is not C;\n")
    with pytest.raises(PackageError) as info:
        build_project(project, quiet=True)
    message = str(info.value)
    assert message.startswith(f"CMake build of {project} failed (exit 1); the compiler says:\n")
    assert "oops.c" in message and "error" in message
