"""How long does it take to inspect and load one native plugin?

Copies one plugin to N distinct paths (so every load is a first load: a real dlopen, a real
read of the tag) and times, per copy:

  inspect   plutino.loader.inspect_plugin: the ELF checks and the tag, no code run
  load      plutino.loader.load_plugin: inspection + dlopen + entry + descriptor checks
  baseline  a bare cffi dlopen (RTLD_NOW|RTLD_LOCAL) + entry call, no checks at all

and prints the median and p90 of each, and load / baseline.

    PYTHONPATH=host:contract python3 bench/load_plugin.py [--plugin PATH] [-n 100]

PATH defaults to the loader's fixture build/test-native/plugins/broken/good_function.so
(built by the tests' plugin_build fixture, or here with CMake if missing).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "build" / "test-native" / "plugins" / "broken" / "good_function.so"


def build_default() -> None:
    build = ROOT / "build" / "test-native"
    if not (build / "CMakeCache.txt").exists():
        subprocess.run(["cmake", "-S", str(ROOT / "native_plugins"), "-B", str(build), "-DPLUTINO_BUILD_BROKEN=ON",
                        f"-DPython_EXECUTABLE={sys.executable}"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(build), "-j2", "--target", "broken_good_function"], check=True,
                   stdout=subprocess.DEVNULL)


def timed(paths: list[Path], action: Callable[[Path], object]) -> list[float]:
    out = []
    for p in paths:
        t0 = time.perf_counter()
        action(p)
        out.append(time.perf_counter() - t0)
    return out


def summary(name: str, samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    median = statistics.median(ordered)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    print(f"{name:<9} median {median * 1e6:8.1f} us   p90 {p90 * 1e6:8.1f} us   (n={len(samples)})")
    return median, p90


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plugin", type=Path, default=DEFAULT)
    parser.add_argument("-n", type=int, default=100)
    args = parser.parse_args()
    if not args.plugin.exists() and args.plugin == DEFAULT:
        build_default()

    from plutino.hostapi import ffi
    from plutino.loader import inspect_plugin, load_plugin
    from plutino.tag import host_platform

    host_platform()  # read the host's own ELF header once, as a running host has

    def bare(p: Path) -> object:
        lib = ffi.dlopen(str(p), ffi.RTLD_NOW | ffi.RTLD_LOCAL)
        return lib.plutino_plugin_v1()

    with tempfile.TemporaryDirectory(prefix="plutino-bench-") as tmp:
        def copies(kind: str) -> list[Path]:
            paths = []
            for i in range(args.n):
                dst = Path(tmp) / f"{kind}{i:04d}.so"
                shutil.copyfile(args.plugin, dst)
                paths.append(dst)
            return paths

        print(f"plugin {args.plugin} ({args.plugin.stat().st_size} bytes), {args.n} distinct copies each")
        summary("inspect", timed(copies("inspect"), inspect_plugin))
        load_median, _ = summary("load", timed(copies("load"), load_plugin))
        base_median, _ = summary("baseline", timed(copies("bare"), bare))
        print(f"load / baseline (median): {load_median / base_median:.1f}x "
              f"(+{(load_median - base_median) * 1e6:.0f} us for the checks and adapters)")


if __name__ == "__main__":
    main()
