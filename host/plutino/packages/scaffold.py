"""``plutino plugin new`` and ``plutino plugin build``: a plugin project from nothing to a .so.

A new project is the smallest thing that builds, tests and packs, in the shape of the bundled
examples: CMakeLists.txt calling ``plutino_add_plugin()``, one source file with the contract's
declaration macros, the UI metadata ``NAME.json``, the default config ``NAME.yaml`` (sources
and sinks), ``test_NAME.py`` and a README. The templates live in
``plutino/packages/templates/<lang>/<kind>/`` (the source file), ``shared/<kind>/`` (the rest)
and ``project/`` (every project's).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from string import Template
from typing import Callable

from plutino.config import KINDS
from plutino.packages.format import PackageError, check_name
from plutino.packages.wheel_scaffold import check_wheel_build, write_wheel_project

LANGS = ("c", "cython")
_TEMPLATES = Path(__file__).resolve().parent / "templates"
_LANGUAGE = {"c": "C", "cython": "Cython"}
#: The (lang, kind) pairs that have a template folder.
_SUPPORTED = {(lang, kind) for lang in LANGS for kind in KINDS if (_TEMPLATES / lang / kind).is_dir()}


def new_project(name: str, kind: str, lang: str, directory: Path | None = None, packaging: str = "zip",
                build: str = "setuptools") -> Path:
    """Write a new plugin project for ``name`` into ``directory`` (default ``./name``).

    ``packaging="wheel"``: a project pip builds into a wheel with ``build`` (setuptools or
    scikit-build), see :mod:`plutino.packages.wheel_scaffold`."""
    check_name(name)
    if packaging not in ("zip", "wheel"):
        raise PackageError(f"unknown packaging {packaging!r}; use zip or wheel")
    if kind not in KINDS:
        raise PackageError(f"unknown plugin kind {kind!r}; use one of: {', '.join(KINDS)}")
    if lang not in LANGS:
        raise PackageError(f"unknown language {lang!r}; use one of: {', '.join(LANGS)}")
    if (lang, kind) not in _SUPPORTED:
        choices = ", ".join(f"--lang {lg} --kind {k}" for lg, k in sorted(_SUPPORTED))
        raise PackageError(f"there is no {lang} template for a {kind} plugin yet; available: {choices}")
    if lang == "cython" and not name.isidentifier():
        raise PackageError(
            f"a Cython plugin's name is also its module name and must be a Python identifier;"
            f" {name!r} is not: use {name.replace('-', '_')!r}"
        )
    if packaging == "wheel":
        check_wheel_build(lang, build)
    target = Path(directory) if directory is not None else Path(name)
    if target.exists() and any(target.iterdir()):
        raise PackageError(f"{target} already exists and is not empty; choose another directory")
    ident = name.replace("-", "_")
    values = {
        "name": name,
        "ident": ident,
        "fn": ident if kind == "function" else "",
        "kind": kind,
        "kinds": f"{kind}s",
        "source_file": f"{name}.pyx" if lang == "cython" else f"{name}.c",
        "language": _LANGUAGE[lang],
        "config_file": "" if kind == "function" else f", {name}.yaml",
        "config_row": "" if kind == "function" else (
            f"\n| `{name}.yaml` | the default config (`default:`), which each"
            f" {'stream' if kind == 'source' else 'rule action'}'s own properties override |"),
    }
    if packaging == "wheel":
        return write_wheel_project(target, values, lang, kind, build)
    template_dir = _TEMPLATES / lang / kind
    shared_dir = _TEMPLATES / "shared" / kind
    target.mkdir(parents=True, exist_ok=True)
    for folder in (_TEMPLATES / "project", shared_dir, template_dir):
        for src in sorted(folder.iterdir()):
            dest_name = src.name.replace("NAME", name).removesuffix(".tmpl")
            text = Template(src.read_text(encoding="utf-8")).substitute(values)
            (target / dest_name).write_text(text, encoding="utf-8")
    return target


def build_project(
    project: Path,
    build_dir: Path | None = None,
    build_type: str = "Release",
    jobs: int = 2,
    quiet: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Configure and build a plugin project with CMake and the contract's CMake package, or,
    for a Cargo project (Cargo.toml and no CMakeLists.txt), with cargo (cargo_build.py).

    Returns the .so files the build produced. Raises PackageError with CMake's output when the
    configure or build step fails. ``progress(done, total)`` follows the build's steps (Ninja's
    ``[3/7]``, Make's ``[ 42%]``) for a progress bar.
    """
    import plutino_contract
    from plutino.packages.cargo_build import build_cargo_project, is_cargo_project

    project = Path(project).absolute()
    if is_cargo_project(project):
        build = Path(build_dir).absolute() if build_dir is not None else project / "build"
        return build_cargo_project(project, build, build_type, jobs, quiet)
    if not (project / "CMakeLists.txt").is_file():
        raise PackageError(
            f"{project} has no CMakeLists.txt (nor Cargo.toml); run this in a plugin project"
            " (create one with `plutino plugin new NAME`)"
        )
    cmake = shutil.which("cmake")
    if cmake is None:
        raise PackageError("cmake is not on PATH; install CMake 3.18 or newer (pip install cmake)")
    build = Path(build_dir).absolute() if build_dir is not None else project / "build"
    configure = [
        cmake, "--no-warn-unused-cli", "-S", str(project), "-B", str(build),
        f"-DPlutinoContract_DIR={plutino_contract.get_cmake_dir()}",
        f"-DCMAKE_BUILD_TYPE={build_type}",
        f"-DPython_EXECUTABLE={sys.executable}",
        f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={build}",
    ]
    if shutil.which("ninja") and not (build / "CMakeCache.txt").exists():
        configure += ["-G", "Ninja"]
    # CMake finds cython on PATH: put this interpreter's scripts folder first.
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    _run(configure, env, "configure", project, quiet)
    _run([cmake, "--build", str(build), "-j", str(jobs)], env, "build", project, quiet, progress)
    return sorted(p for p in build.glob("*.so") if p.is_file())


_STEP = re.compile(r"^\[\s*(\d+)/(\d+)\]|^\[\s*(\d+)%\]")


def _run(cmd: list[str], env: dict[str, str], step: str, project: Path, quiet: bool,
         progress: Callable[[int, int], None] | None = None) -> None:
    lines: list[str] = []
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if not quiet:
                print(line, end="")
            match = _STEP.match(line) if progress is not None else None
            if match and progress is not None:
                done, total, percent = match.groups()
                progress(*((int(done), int(total)) if percent is None else (int(percent), 100)))
    if proc.returncode != 0:
        tail = "".join(lines[-40:]).rstrip("\n")
        raise PackageError(
            f"CMake {step} of {project} failed (exit {proc.returncode}); the compiler says:\n{tail}"
        )
