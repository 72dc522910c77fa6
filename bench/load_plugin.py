"""Benchmark 5 (and the host's memory, 6): loading plugins, and starting a host that has many.

1. One plugin. Copies one plugin to N distinct paths (so every load is a first load: a real
   dlopen, a real read of the tag) and times, per copy:

     inspect   plutino.native.loader.inspect_plugin: the ELF checks and the tag, no code run
     load      plutino.native.loader.load_plugin: inspection + dlopen + entry + descriptor checks
     baseline  a bare cffi dlopen (RTLD_NOW|RTLD_LOCAL) + entry call, no checks at all

   and prints the median and p90 of each, and load / baseline.

2. Start-up with 100 installed plugins. bench/many_function.c is compiled 100 times under
   distinct plugin and function names (cached in build/bench-native/many/), each is packed
   (plutino.packages.format.pack) and installed (PluginManager.install) into a fresh data directory;
   then, in fresh processes, against the same with an empty data directory (the baseline):

     load_all  a new process imports plutino.packages.manager and plutino.native.loader, then runs
               PluginManager(dir).load_all(), timed alone
     server    ``python -m plutino serve`` on the data directory, until GET /ping answers 200;
               its resident memory (VmRSS) then

3. Memory of a server running the demo (``serve --demo``: the bundled plugins installed, the
   random -> fastmath -> file rule running), idle for a few seconds: VmRSS and VmHWM.
   (bench/pipeline.py prints the memory under load.)

    python bench/load_plugin.py [--quick] [--plugin PATH] [-n 100] [--installed 100] [--no-startup]

PATH defaults to the loader's fixture build/native/plugins/broken/good_function.so
(built by the tests' plugin_build fixture, or here with CMake if missing).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _broker as broker_lib
import _harness as h

ROOT = h.ROOT
DEFAULT = ROOT / "build" / "native" / "plugins" / "broken" / "good_function.so"
MANY_SRC = Path(__file__).resolve().parent / "many_function.c"
MANY_DIR = h.BUILD / "many"
BUNDLED = ["random", "fastmath", "echo", "accumulateWordCount", "file"]


def build_default() -> None:
    build = ROOT / "build" / "native"  # make's and the tests' build, configured from the root
    if not (build / "CMakeCache.txt").exists():
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), "-DPLUTINO_BUILD_BROKEN=ON",
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


def one_plugin(plugin: Path, n: int) -> float:
    """Part 1; returns the median load time (s)."""
    from plutino.native.hostapi import ffi
    from plutino.native.loader import inspect_plugin, load_plugin
    from plutino.native.tag import host_platform

    host_platform()  # read the host's own ELF header once, as a running host has

    def bare(p: Path) -> object:
        lib = ffi.dlopen(str(p), ffi.RTLD_NOW | ffi.RTLD_LOCAL)
        return lib.plutino_plugin_v1()

    with tempfile.TemporaryDirectory(prefix="plutino-bench-") as tmp:
        def copies(kind: str) -> list[Path]:
            paths = []
            for i in range(n):
                dst = Path(tmp) / f"{kind}{i:04d}.so"
                shutil.copyfile(plugin, dst)
                paths.append(dst)
            return paths

        print(f"plugin {plugin} ({plugin.stat().st_size} bytes), {n} distinct copies each")
        summary("inspect", timed(copies("inspect"), inspect_plugin))
        load_median, _ = summary("load", timed(copies("load"), load_plugin))
        base_median, _ = summary("baseline", timed(copies("bare"), bare))
        print(f"load / baseline (median): {load_median / base_median:.1f}x "
              f"(+{(load_median - base_median) * 1e6:.0f} us for the checks and adapters)")
    return load_median


# -- part 2: many installed plugins ---------------------------------------------------------

def many_plugins(count: int) -> list[tuple[Path, str]]:
    """``count`` builds of many_function.c: (.so, function name), compiled when missing (2 at once)."""
    import plutino_contract as contract

    MANY_DIR.mkdir(parents=True, exist_ok=True)
    made = [(MANY_DIR / f"bench_fn_{i:03d}.so", f"bench_fn_{i:03d}_twice") for i in range(count)]
    stale = [(so, fn) for so, fn in made if not so.exists() or so.stat().st_mtime < MANY_SRC.stat().st_mtime]

    def compile_one(item: tuple[Path, str]) -> None:
        so, fn = item
        cmd = [os.environ.get("CC", "cc"), "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-I",
               contract.get_include(), f'-DPLUGIN_NAME="{so.stem}"', f'-DFUNCTION_NAME="{fn}"', str(MANY_SRC),
               "-o", str(so)]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            sys.exit(f"compiling {so.name} failed: {' '.join(cmd)}\n{proc.stdout}")

    if stale:
        print(f"compiling {len(stale)} plugins into {MANY_DIR.relative_to(ROOT)} ...", file=sys.stderr)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(compile_one, stale))
    return made


def install_all(home: Path, plugins: list[tuple[Path, str]], zips: Path) -> list[float]:
    """Pack and install every plugin into the data directory ``home``; the install times (s)."""
    from plutino.packages.format import pack
    from plutino.packages.manager import PluginManager

    manager = PluginManager(home)
    times = []
    for so, fn in plugins:
        package = pack(so, zips / f"{so.stem}.zip", functions=[fn])
        t0 = time.perf_counter()
        manager.install(None, None, str(package))
        times.append(time.perf_counter() - t0)
    manager.store.close()
    return times


def child_env() -> dict[str, str]:
    """The environment of a child Python: this one's, with plutino and plutino_contract findable."""
    import plutino
    import plutino_contract

    paths = [str(Path(m.__file__ or ".").resolve().parent.parent) for m in (plutino, plutino_contract)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


_LOAD_ALL = """
import json, sys, time
t0 = time.perf_counter()
from plutino.packages.manager import PluginManager
import plutino.native.loader  # imported by the first load (pyarrow, cffi): a server has it already
t1 = time.perf_counter()
manager = PluginManager(sys.argv[1])
result = manager.load_all()
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_all_s": t2 - t1, "loaded": len(result["loaded"]),
                  "failed": result["failed"]}))
"""


def fresh_load_all(home: Path) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", _LOAD_ALL, str(home)], stdout=subprocess.PIPE, text=True,
                          env=child_env())
    if proc.returncode != 0:
        sys.exit(f"load_all in a fresh process failed (exit {proc.returncode})")
    result = json.loads(proc.stdout)
    if result["failed"]:
        sys.exit(f"plugins failed to load: {result['failed']}")
    return result


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of process ``pid``, KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


class Server:
    """``python -m plutino serve`` on a data directory: started, timed until /ping answers."""

    def __init__(self, home: Path, *extra: str) -> None:
        self.port = broker_lib.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = open(home.parent / f"{home.name}-server.log", "ab")
        started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "plutino", "serve", "--port", str(self.port),
                                      "--data-dir", str(home), "--log-level", "warning", *extra],
                                     stdout=log, stderr=log, env=child_env())
        while True:
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None:
                sys.exit(f"the server exited with {self.proc.returncode}; see {log.name}")
            if time.perf_counter() - started > 60:
                self.stop()
                sys.exit(f"the server did not answer /ping within 60 s; see {log.name}")
            time.sleep(0.005)
        self.startup_s = time.perf_counter() - started

    def get(self, path: str) -> object:
        with urllib.request.urlopen(self.url + path, timeout=5) as answer:
            return json.loads(answer.read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def startup(count: int, repeats: int, one_load_s: float) -> None:
    """Part 2."""
    plugins = many_plugins(count)
    with tempfile.TemporaryDirectory(prefix="plutino-bench-home-") as tmp:
        empty, full = Path(tmp) / "empty", Path(tmp) / "full"
        zips = Path(tmp) / "zips"
        empty.mkdir()
        zips.mkdir()
        installs = install_all(full, plugins, zips)
        print()
        print(f"installed {count} function plugins (bench/many_function.c, {plugins[0][0].stat().st_size} bytes "
              f"each): {sum(installs):.2f} s, median {statistics.median(installs) * 1000:.1f} ms an install")
        cases = {"empty data dir": empty, f"{count} plugins": full}
        load: dict[str, list[dict[str, float]]] = {k: [] for k in cases}
        serve: dict[str, list[float]] = {k: [] for k in cases}
        rss: dict[str, int] = {}
        for _ in range(repeats):  # interleaved, as everywhere
            for name, home in cases.items():
                load[name].append(fresh_load_all(home))
                server = Server(home)
                serve[name].append(server.startup_s)
                rss[name] = rss_kib(server.proc.pid)[0]
                server.stop()
        rows = []
        for name in cases:
            imp = statistics.median(r["import_s"] for r in load[name])
            la = statistics.median(r["load_all_s"] for r in load[name])
            rows.append([name, f"{imp * 1000:.0f}", f"{la * 1000:.1f}", f"{statistics.median(serve[name]):.2f}",
                         f"{rss[name] / 1024:.0f}"])
        print(f"start-up in fresh processes (medians of {repeats}):")
        print(h.table(["data dir", "imports ms", "load_all() ms", "server until /ping s",
                       "server RSS MiB"], rows))
        base, many = (statistics.median(r["load_all_s"] for r in load[k]) for k in cases)
        per = (many - base) / count
        s0, s1 = (statistics.median(serve[k]) for k in cases)
        print(f"load_all(): {per * 1e6:.0f} us a plugin ({many / max(base, 1e-9):.0f}x the empty data dir; one "
              f"plugin's load_plugin() alone, above: {one_load_s * 1e6:.0f} us); the server starts in "
              f"{s1:.2f} s with {count} plugins against {s0:.2f} s with none ({s1 / s0:.2f}x)")


def demo_memory(idle_s: float) -> None:
    """Part 3."""
    bundled = h.plugin_dir(None, BUNDLED)
    with tempfile.TemporaryDirectory(prefix="plutino-bench-demo-") as tmp:
        home = Path(tmp) / "home"
        server = Server(home, "--demo", "--bundled-dir", str(bundled))
        try:
            deadline = time.monotonic() + 30
            status: dict[str, object] = {}
            while time.monotonic() < deadline:
                try:
                    status = server.get("/rules/demo/status")  # type: ignore[assignment]
                except OSError:
                    status = {}
                if status.get("status") == "running":
                    break
                time.sleep(0.1)
            if status.get("status") != "running":
                sys.exit(f"the demo rule is not running: {status}")
            time.sleep(idle_s)
            rss, peak = rss_kib(server.proc.pid)
            status = server.get("/rules/demo/status")  # type: ignore[assignment]
        finally:
            server.stop()
    rows = status.get("source_demo_0_records_in_total", "?")
    print()
    print(f"memory of `serve --demo` (bundled plugins installed, rule demo running, {rows} rows in after "
          f"{idle_s:g} s idle): VmRSS {rss / 1024:.0f} MiB, VmHWM {peak / 1024:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--plugin", type=Path, default=DEFAULT)
    parser.add_argument("-n", type=int, default=100, help="copies of one plugin (part 1)")
    parser.add_argument("--installed", type=int, default=100, help="plugins installed for the start-up (part 2)")
    parser.add_argument("--no-startup", action="store_true", help="only part 1")
    args = parser.parse_args()
    if not args.plugin.exists() and args.plugin == DEFAULT:
        build_default()
    print("machine:", h.machine())
    one = one_plugin(args.plugin, args.n)
    if not args.no_startup:
        startup(args.installed, 2 if args.quick else 5, one)
        demo_memory(2.0 if args.quick else 5.0)


if __name__ == "__main__":
    main()
