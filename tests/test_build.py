"""The installed host package (`pip install ./contract .`) ships the example plugins (the
demo job, `plutino serve --demo`, is tested in tests/api/test_server_process.py).

The bundle tests look at the package as pip installed it, so they skip when `plutino` is
imported from the source tree (PYTHONPATH=host) instead: run them through `make test`.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pyarrow as pa
import pytest

import plutino
from plutino.native.loader import load_plugin
from plutino_contract.protocols import Context

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path(plutino.__file__).resolve().parent
BUNDLED = PACKAGE / "bundled"
KINDS = {"sources": "source", "sinks": "sink", "functions": "function"}


def _installed() -> str | None:
    """Why the tests cannot run here, or None when plutino is the pip-installed package."""
    try:
        dist = importlib.metadata.distribution("plutino")
    except importlib.metadata.PackageNotFoundError:
        return "plutino is not installed as a package (only on PYTHONPATH); run `make test`"
    installed_init = Path(dist.locate_file("plutino/__init__.py")).resolve()
    if installed_init != Path(plutino.__file__).resolve():
        return f"plutino is imported from {PACKAGE}, not from the installed package; run `make test`"
    return None


installed_only = pytest.mark.skipif(_installed() is not None, reason=str(_installed()))


@installed_only
def test_every_example_plugin_of_native_plugins_is_bundled_in_its_kind_folder():
    expected = {
        (folder, path.name)
        for folder in KINDS
        for path in (REPO / "native_plugins" / folder).glob("*")
        if (path / "CMakeLists.txt").is_file()
    }
    bundled = {(so.parent.name, so.stem) for so in BUNDLED.glob("*/*.so")}
    assert expected <= bundled, f"missing from {BUNDLED}: {sorted(expected - bundled)}"


@installed_only
def test_no_broken_fixture_is_bundled():
    broken = {p.stem for p in (REPO / "native_plugins" / "broken").glob("*.c")}
    assert not broken & {so.stem for so in BUNDLED.rglob("*.so")}
    assert not (BUNDLED / "broken").exists()


@installed_only
def test_every_bundled_plugin_loads_as_the_kind_of_its_folder():
    plugins = sorted(BUNDLED.glob("*/*.so"))
    assert plugins, f"no plugins under {BUNDLED}"
    for so in plugins:
        plugin = load_plugin(so, kind=KINDS[so.parent.name])
        assert plugin.name == so.stem


@installed_only
def test_the_random_source_ships_its_default_config_beside_it():
    assert "default:" in (BUNDLED / "sources" / "random.yaml").read_text(encoding="utf-8")


@installed_only
def test_the_bundled_cython_plugin_is_callable():
    geo = load_plugin(BUNDLED / "functions" / "geo.so", kind="function")
    inst = geo.functions["geohash"].create(Context(plugin_name="geo"))
    try:
        assert inst.call([pa.array([57.64911]), pa.array([10.40744]), pa.array([11])], 1).to_pylist() == ["u4pruydqqvj"]
    finally:
        inst.close()
