"""Helpers of tests/packages/test_wheels.py: plugin projects built into wheels by a real
``pip wheel``, and throwaway environments pip installs them into.

Builds run without build isolation, with this tree's plutino-contract (on PYTHONPATH) and the
setuptools, wheel, Cython and scikit-build-core of the test environment: the contract is not
on a package index here.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

from package_helpers import REPO, subprocess_env

PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "--quiet"]
#: The platform part of a wheel's tag here, e.g. linux_x86_64.
PLATFORM = sysconfig.get_platform().replace("-", "_").replace(".", "_")
CPYTHON = f"cp{sys.version_info[0]}{sys.version_info[1]}"

#: A sink whose ABI tag says ABI 2.0 (the loader's fixture header gives its callbacks).
BAD_ABI_C = """\
#include "fixture.h"

static const plutino_sink_api sink = FX_SINK_API;

PLUTINO_TAG_RECORD(PLUTINO_KIND_SINK, "wheel_bad_abi", "1.0.0", 2, 0);
PLUTINO_DESCRIPTOR_ENTRY(PLUTINO_KIND_SINK, "wheel_bad_abi", "1.0.0", 0, NULL, &sink, NULL)
"""
BAD_ABI_SETUP = f"""\
from setuptools import setup
from plutino_contract.setuptools import plugin_cmdclass, plugin_extension

setup(ext_modules=[plugin_extension("wheel_bad_abi", "sink", ["bad.c"], package="plutino_wheel_bad_abi",
                                    include_dirs=[{str(REPO / "native_plugins" / "broken")!r}])],
      cmdclass=plugin_cmdclass())
"""


CPP_SETUP = """\
from setuptools import setup
from plutino_contract.setuptools import plugin_cmdclass, plugin_extension

setup(ext_modules=[plugin_extension("cpp_text", "function", ["cpp_text.cpp"], package="plutino_cpp_text")],
      cmdclass=plugin_cmdclass())
"""


def setuptools_pyproject(plugin: str, kind: str) -> str:
    """The pyproject.toml of a setuptools project building plugin ``plugin`` (the ``.so`` of
    that name in package ``plutino_<plugin>``), declared under the plutino.plugins entry point."""
    return f"""\
[build-system]
requires = ["setuptools>=61", "wheel", "plutino-contract>=1.1"]
build-backend = "setuptools.build_meta"

[project]
name = "plutino-{plugin.replace('_', '-')}"
version = "1.0.0"

[project.entry-points."plutino.plugins"]
{plugin} = "plutino_{plugin}:{plugin}.so [{kind}]"

[tool.setuptools]
packages = []
"""


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` with this tree's plutino and contract importable; fail with its output."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=300, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
    return proc


def bad_abi_project(root: Path) -> Path:
    project = root / "wheel_bad_abi"
    project.mkdir()
    (project / "bad.c").write_text(BAD_ABI_C)
    (project / "pyproject.toml").write_text(setuptools_pyproject("wheel_bad_abi", "sink"))
    (project / "setup.py").write_text(BAD_ABI_SETUP)
    return project


def cpp_project(root: Path) -> Path:
    """The C++ example (native_plugins/examples/cpp_text, plutino.hpp) as a setuptools project."""
    project = root / "cpp_text"
    project.mkdir()
    (project / "cpp_text.cpp").write_bytes((REPO / "native_plugins" / "examples" / "cpp_text" / "cpp_text.cpp").read_bytes())
    (project / "pyproject.toml").write_text(setuptools_pyproject("cpp_text", "function"))
    (project / "setup.py").write_text(CPP_SETUP)
    return project


def build_wheels(projects: list[Path], out: Path) -> dict[str, Path]:
    """``pip wheel`` every project (one pip run); the wheels by their distribution's name."""
    run([*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), *map(str, projects)])
    return {p.name.split("-")[0]: p for p in sorted(out.glob("*.whl"))}


def make_env(where: Path, wheels: list[Path]) -> Path:
    """A throwaway environment (a venv without pip of its own) with ``wheels`` installed by
    pip; returns its site-packages."""
    run([sys.executable, "-m", "venv", "--without-pip", str(where)])
    if wheels:
        pip_in(where, "install", "--no-deps", "--no-index", *map(str, wheels))
    (site,) = (where / "lib").glob("python3*/site-packages")
    return site


def pip_in(env: Path, *args: str) -> None:
    """Run this environment's pip on the throwaway environment ``env``."""
    run([*PIP, "--python", str(env / "bin" / "python"), *args])
