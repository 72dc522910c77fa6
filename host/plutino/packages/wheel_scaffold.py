"""``plutino plugin new --packaging wheel``: a plugin project that pip builds into a wheel.

The project holds the plugin's source (the same templates as a zip project's), a package folder
``plutino_<name>/`` the ``.so`` is installed into, a ``pyproject.toml`` declaring the plugin
under the entry-point group ``plutino.plugins``, and the build: ``setup.py`` with the
contract's setuptools commands (``--build setuptools``, C or Cython), or ``CMakeLists.txt``
with the contract's CMake package for scikit-build-core (``--build scikit-build``, C).
``test_<name>.py`` builds the wheel, installs it into a folder of its own, finds the plugin as
the host does and loads it. The templates live in ``plutino/packages/templates/wheel/``.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

from plutino.packages.format import PackageError

BUILDS = ("setuptools", "scikit-build")
_TEMPLATES = Path(__file__).resolve().parent / "templates"
_SUPPORTED = {("c", "setuptools"), ("cython", "setuptools"), ("c", "scikit-build")}


def check_wheel_build(lang: str, build: str) -> None:
    """The builds a wheel project can have, before anything is written."""
    if build not in BUILDS:
        raise PackageError(f"unknown build {build!r}; use one of: {', '.join(BUILDS)}")
    if (lang, build) not in _SUPPORTED:
        raise PackageError(
            f"there is no {build} template for a {lang} plugin; a Cython plugin builds with --build setuptools"
            " (or, as a zip, with --packaging zip)"
        )


def write_wheel_project(target: Path, values: dict[str, str], lang: str, kind: str, build: str) -> Path:
    """Write the wheel project of one plugin into ``target`` (an empty or new folder)."""
    ident = values["ident"]
    values = {
        **values,
        "dist": f"plutino-{values['name'].replace('_', '-')}",  # as setuptools spells it in the metadata
        "package": f"plutino_{ident}",
        "so_file": f"{ident}.so",
        "functions": repr([values["fn"]] if kind == "function" else []),
        "build_requires": ", ".join(f'"{r}"' for r in (
            "setuptools>=61", "wheel", "plutino-contract>=1.1", *(("cython>=3",) if lang == "cython" else ()))),
    }
    files = [(src, src.name) for src in sorted((_TEMPLATES / lang / kind).iterdir())]
    files += [(src, src.name) for src in sorted((_TEMPLATES / "wheel" / build).iterdir())]
    files += [(src, src.name) for src in sorted((_TEMPLATES / "wheel" / "shared").iterdir()) if src.is_file()]
    files += [(src, f"PACKAGE/{src.name}") for src in sorted((_TEMPLATES / "wheel" / "shared" / "PACKAGE").iterdir())]
    target.mkdir(parents=True, exist_ok=True)
    for src, rel in files:
        dest = target / rel.replace("PACKAGE", values["package"]).replace("NAME", values["name"]).removesuffix(".tmpl")
        text = Template(src.read_text(encoding="utf-8")).substitute(values)
        # the plugin's source is a zip project's: its version lives in pyproject.toml here
        text = text.replace("the VERSION in CMakeLists.txt", "the version in pyproject.toml")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text, encoding="utf-8")
    return target


__all__ = ["BUILDS", "check_wheel_build", "write_wheel_project"]
