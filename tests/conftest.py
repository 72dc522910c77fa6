"""Session fixtures shared by every test area.

``plugin_build`` builds native_plugins/ (bundled examples and, with PLUTINO_BUILD_BROKEN=ON,
the loader's corpus) with CMake into build/native once per session and returns its
``plugins/`` folder: ``plugin_build / "functions" / "echo.so"``,
``plugin_build / "broken" / "no_tag.so"``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import MisbehavingHandler, serving

ROOT = Path(__file__).resolve().parent.parent
#: The one CMake build of native_plugins/: `make` compiles it while building the wheel
#: (pip install --config-settings=build-dir=build/native, with the test corpora), the tests
#: reuse it. Configured from the root CMakeLists.txt, as scikit-build-core does.
BUILD = ROOT / "build" / "native"


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        pytest.fail(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stdout}", pytrace=False)


def _configured(cache: Path) -> bool:
    """Whether ``cache`` is a configure of this tree's root with the test corpora."""
    if not cache.is_file():
        return False
    text = cache.read_text(errors="replace")
    return f"CMAKE_HOME_DIRECTORY:INTERNAL={ROOT}\n" in text and "PLUTINO_BUILD_BROKEN:BOOL=ON\n" in text


#: The files that take longest, run first: on pytest-xdist's workers (make test) they then run
#: beside the rest instead of ending the run alone.
SLOW_FIRST = ("reliability/test_api_fuzzing.py", "api/test_scale_api.py", "reliability/test_restart_persistence.py",
              "packages/test_wheels.py", "api/test_server_process.py", "api/test_bad_input.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = ROOT / "tests"

    def rank(item: pytest.Item) -> int:
        try:
            return SLOW_FIRST.index(item.path.relative_to(tests).as_posix())
        except ValueError:
            return len(SLOW_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order


@pytest.fixture(scope="session")
def plugin_build() -> Path:
    """Build native_plugins/ into build/native and return build/native/plugins.

    After `make` this only checks that the build is up to date (the wheel build compiled it);
    run alone, it configures the folder first. A file lock (the one `make` takes) keeps two
    builds of the folder from running at once."""
    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD.parent / "native.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cache = BUILD / "CMakeCache.txt"
        if not _configured(cache):
            if cache.exists():  # another source folder or options: start over, as scikit-build-core does
                cache.unlink()
                shutil.rmtree(BUILD / "CMakeFiles", ignore_errors=True)
            generator = ["-G", "Ninja"] if shutil.which("ninja") else []
            _run(["cmake", "-S", str(ROOT), "-B", str(BUILD), *generator, "-DPLUTINO_BUILD_BROKEN=ON",
                  f"-DPython_EXECUTABLE={sys.executable}"], "configuring native_plugins")
        _run(["cmake", "--build", str(BUILD), f"-j{os.cpu_count() or 2}"], "building native_plugins")
    return BUILD / "plugins"


@pytest.fixture(scope="session")
def zips(plugin_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with <name>.zip for every bundled plugin, packed with plutino.packages.format.pack."""
    from plutino.packages.format import pack

    out = tmp_path_factory.mktemp("zips")
    for kind in ("sources", "sinks", "functions"):
        for so in sorted((plugin_build / kind).glob("*.so")):
            pack(so, out / f"{so.stem}.zip")
    return out


@pytest.fixture(scope="session")
def http_base(zips: Path) -> Iterator[str]:
    """A real HTTP server on a free loopback port serving the zips folder, plus two paths that
    misbehave (see :class:`helpers.MisbehavingHandler`)."""
    with serving(zips, MisbehavingHandler) as base:
        yield base


@pytest.fixture(scope="session", autouse=True)
def package_sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The tests install packages from their temporary folders and from HTTP servers on
    127.0.0.1, which the default settings refuse (only $PLUTINO_HOME/uploads and public
    addresses): allow both, for in-process hosts and server processes alike. The tests of
    those defaults (tests/packages/test_package_security.py, ...) set them back."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PLUTINO_ALLOWED_FILE_DIRS", str(tmp_path_factory.getbasetemp()))
        patch.setenv("PLUTINO_ALLOW_PRIVATE_ADDRESSES", "127.0.0.1")
        yield


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A fresh, empty data directory."""
    return tmp_path / "plutino_data"


@pytest.fixture
def manager(home: Path) -> Iterator[Any]:
    """A PluginManager on ``home``."""
    from plutino.packages.manager import PluginManager

    mgr = PluginManager(home)
    yield mgr
    mgr.store.close()

