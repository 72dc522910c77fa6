"""Helpers the package tests import by name (fixtures are in conftest.py)."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from plutino.packages.manager import PluginManager
from plutino.packages.scaffold import build_project

REPO = Path(__file__).resolve().parents[2]

#: The bundled plugins, as (kind, name); each is packed from the test build and installed.
BUNDLED = [
    ("source", "random"),
    ("sink", "file"),
    ("function", "echo"),
    ("function", "accumulateWordCount"),
    ("function", "fastmath"),
    ("function", "geo"),
]


def snapshot(home: Path, manager: PluginManager) -> tuple[dict[str, str], dict]:
    """Every file under the data dir (but the SQLite files) with its sha256, and every store row."""
    files = {}
    for path in sorted(home.rglob("*")):
        rel = path.relative_to(home).as_posix()
        if rel.startswith("store.db"):
            continue
        files[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return files, manager.store.dump()


def rebuild(kind: str, name: str, version: str, work: Path) -> Path:
    """Compile a bundled plugin's sources again with another VERSION (PLUTINO_PLUGIN_VERSION).

    The bundled plugins declare themselves with PLUTINO_PLUGIN_VERSION, which
    plutino_add_plugin(... VERSION v) defines, so a copy built with VERSION 1.1.0 is the same
    code with 1.1.0 in its ABI tag and descriptor. Returns the new .so; its name.yaml/json are
    copied beside it so `pack` picks them up as it does for the test build.
    """
    src = REPO / "native_plugins" / f"{kind}s" / name
    sources = sorted(p for p in src.iterdir() if p.suffix in (".c", ".pyx"))
    project = work / f"{name}-{version}"
    project.mkdir(parents=True)
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.18)\n"
        f"project(rebuild_{name} C)\n"
        "find_package(PlutinoContract 1.0 REQUIRED)\n"
        f"plutino_add_plugin({name} KIND {kind} VERSION {version} SOURCES "
        + " ".join(f'"{p}"' for p in sources) + ")\n"
    )
    (so,) = [p for p in build_project(project, quiet=True) if p.name == f"{name}.so"]
    for extra in (f"{name}.yaml", f"{name}.json"):
        if (src / extra).is_file():
            (so.parent / extra).write_bytes((src / extra).read_bytes())
    return so


def subprocess_env() -> dict[str, str]:
    """The environment for a child Python that imports this tree's plutino and contract."""
    paths = [str(REPO / "host"), str(REPO / "contract"), *sys.path]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
