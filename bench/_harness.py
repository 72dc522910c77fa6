"""What the benchmark scripts share: the plugins under test, the C baseline, the clock, the machine.

The machine these run on is shared and noisy, so absolute times drift; ratios measured in the
same run hold. Hence the method every script uses (:func:`measure`): each case is calibrated to
run for at least ``target_s`` per round, the cases of one point are run round-robin (interleaved,
so a slow spell hits them all alike) for many short rounds, and each case's fastest round is
reported (``--stat median`` reports the median round instead; :func:`measure_rounds` keeps
every round, for min/median/max, and brackets the point with the load samples of
:mod:`_figures`). Other processes only ever add
time, so under sustained load the fastest round is the stable estimate: on this 2-core machine
with two other jobs running, the host/C ratio at 64K rows varied 0.58-0.63 over eight medians
and 0.62-0.63 over eight minimums of the same rounds. The garbage collector is off while a round
runs, as in :mod:`timeit`.

Run on its own (``python bench/_harness.py``) it prints the machine. ``make bench`` skips it.
"""

from __future__ import annotations

import gc
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
NATIVE = ROOT / "native_plugins"
BUILD = ROOT / "build" / "bench-native"
DRIVER_SRC = Path(__file__).resolve().parent / "direct_driver.c"

try:  # an installed venv has both packages; a checkout needs PYTHONPATH=host:contract, or this
    import plutino  # noqa: F401
    import plutino_contract  # noqa: F401
except ImportError:
    sys.path[:0] = [str(ROOT / "host"), str(ROOT / "contract")]

import cffi  # noqa: E402
import pyarrow as pa  # noqa: E402

import plutino_contract as contract  # noqa: E402
from _figures import LoadMeter, Record, Spread, add_load_options, refuse  # noqa: E402, F401 (re-exported)

Runner = Callable[[int], int]
"""``run(iters)`` performs one case ``iters`` times and returns the elapsed nanoseconds."""


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        sys.exit(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stdout}")


def plugin_dir(explicit: str | None, targets: list[str]) -> Path:
    """The ``plugins/`` folder holding the .so files under test, building them when needed.

    ``--plugins DIR`` wins; otherwise native_plugins/ is built (Release, only ``targets``) into
    build/bench-native. CMake's incremental build makes the second run a no-op."""
    if explicit:
        path = Path(explicit)
        if not path.is_dir():
            sys.exit(f"--plugins {explicit}: no such folder; give the plugins/ folder of a native_plugins "
                     "build (it holds functions/, sources/, sinks/)")
        return path
    if shutil.which("cmake") is None:
        sys.exit("cmake is not on PATH: install it (pip install cmake) or pass --plugins DIR with built plugins")
    if not (BUILD / "CMakeCache.txt").exists():
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        print(f"building the plugins under test into {BUILD.relative_to(ROOT)} ...", file=sys.stderr)
        _run(["cmake", "-S", str(NATIVE), "-B", str(BUILD), *generator, "-DCMAKE_BUILD_TYPE=Release",
              f"-DPython_EXECUTABLE={sys.executable}"], "configuring native_plugins")
    if targets:
        _run(["cmake", "--build", str(BUILD), "-j2", "--target", *targets], "building native_plugins")
    return BUILD / "plugins"


def hostile_plugin(name: str, explicit: str | None = None) -> Path:
    """The hostile plugin ``name`` of native_plugins/hostile/ (e.g. ``h_segv_call``), built.

    ``--hostile DIR`` wins (a built ``plugins/hostile`` folder, e.g. the tests'
    build/native/plugins/hostile). Otherwise build/bench-native is configured with
    PLUTINO_BUILD_BROKEN=ON (once; the other scripts build only their own targets there) and
    the one target ``hostile_<name>`` is built."""
    if explicit:
        path = Path(explicit) / f"{name}.so"
        if not path.is_file():
            sys.exit(f"--hostile {explicit}: no {name}.so there; give the plugins/hostile folder of a "
                     "native_plugins build configured with -DPLUTINO_BUILD_BROKEN=ON")
        return path
    plugin_dir(None, [])  # configured, as the other scripts have it
    cache = (BUILD / "CMakeCache.txt").read_text()
    if "PLUTINO_BUILD_BROKEN:BOOL=ON" not in cache:
        print(f"configuring {BUILD.relative_to(ROOT)} with the hostile plugins ...", file=sys.stderr)
        _run(["cmake", "-S", str(NATIVE), "-B", str(BUILD), "-DPLUTINO_BUILD_BROKEN=ON"],
             "configuring native_plugins with PLUTINO_BUILD_BROKEN=ON")
    _run(["cmake", "--build", str(BUILD), "-j2", "--target", f"hostile_{name}"], f"building hostile_{name}")
    return BUILD / "plugins" / "hostile" / f"{name}.so"


def compile_c(src: Path, out: Path, extra: list[str] | None = None) -> Path:
    """Compile the C file ``src`` into the shared library ``out`` (with the contract's headers,
    -O2) when ``out`` is missing or older than ``src``; return ``out``."""
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        out.parent.mkdir(parents=True, exist_ok=True)
        cc = os.environ.get("CC", "cc")
        _run([cc, "-O2", "-shared", "-fPIC", "-I", contract.get_include(), str(src),
              "-o", str(out), *(extra or [])], f"compiling {src.relative_to(ROOT)}")
    return out


def count_sink() -> Path:
    """The sink "count" of bench/count_sink.c (it counts rows, nothing else), compiled into
    build/bench-native/bench/count.so."""
    return compile_c(Path(__file__).resolve().parent / "count_sink.c", BUILD / "bench" / "count.so",
                     ["-fvisibility=hidden"])


_DRIVER_CDEF = """
typedef struct bench_fn bench_fn;
bench_fn* bench_open(const char* so_path, const char* function, void* (*alloc_fn)(size_t),
                     void (*free_fn)(void*), char* err, size_t errcap);
int bench_run(bench_fn* b, int32_t nargs, const struct ArrowArray* const* args,
              const struct ArrowSchema* const* types, int64_t length, const int32_t* group_ids,
              int64_t ngroups, int64_t iters, int64_t* elapsed_ns, char* err, size_t errcap);
void bench_close(bench_fn* b);
"""


class DirectFunction:
    """A plugin function called straight from C by direct_driver.c: the baseline (a).

    The arguments are exported from the same pyarrow arrays the host is given, once, and kept
    for the object's life, so the driver reads the very buffers the host path reads. Results
    are allocated 64-byte aligned by the C library's posix_memalign (``host_alloc=False``: what
    plutino.h promises, done plainly) or by the allocator the running host hands its plugins
    (``host_alloc=True``)."""

    _ffi: Any = None
    _lib: Any = None

    @classmethod
    def _load(cls) -> None:
        if cls._lib is not None:
            return
        out = compile_c(DRIVER_SRC, BUILD / "direct_driver.so", ["-ldl"])
        ffi = cffi.FFI()
        ffi.cdef(contract.CDEF)
        ffi.cdef(_DRIVER_CDEF)
        cls._ffi, cls._lib = ffi, ffi.dlopen(str(out))

    def __init__(self, so_path: Path, function: str, host_alloc: bool = False) -> None:
        self._load()
        ffi, lib = self._ffi, self._lib
        alloc, free = ffi.NULL, ffi.NULL
        if host_alloc:
            from plutino.native.hostapi import ffi as host_ffi
            from plutino.native.hostapi import host_api

            api = host_api()
            alloc = ffi.cast("void*(*)(size_t)", int(host_ffi.cast("uintptr_t", api.alloc)))
            free = ffi.cast("void(*)(void*)", int(host_ffi.cast("uintptr_t", api.free)))
        self._err = ffi.new("char[]", 1024)
        self._fn = lib.bench_open(str(so_path).encode(), function.encode(), alloc, free, self._err, 1024)
        if self._fn == ffi.NULL:
            raise RuntimeError(ffi.string(self._err).decode())
        self.name = function
        self._elapsed = ffi.new("int64_t*")
        self._args: list[Any] = []

    def bind(self, args: list[pa.Array], length: int, group_ids: pa.Array | None = None,
             ngroups: int = 0) -> Runner:
        """A runner calling the function on these arguments; keeps them exported until close()."""
        ffi, lib = self._ffi, self._lib
        n = len(args)
        arrays = ffi.new("struct ArrowArray[]", n)
        schemas = ffi.new("struct ArrowSchema[]", n)
        array_ptrs = ffi.new("struct ArrowArray*[]", n)
        type_ptrs = ffi.new("struct ArrowSchema*[]", n)
        for i, a in enumerate(args):
            a._export_to_c(int(ffi.cast("uintptr_t", arrays + i)), int(ffi.cast("uintptr_t", schemas + i)))
            array_ptrs[i], type_ptrs[i] = arrays + i, schemas + i
        gids = ffi.NULL
        if group_ids is not None:
            gids = ffi.cast("const int32_t*", group_ids.buffers()[1].address) + group_ids.offset
        keep = (arrays, schemas, array_ptrs, type_ptrs, args, group_ids)
        self._args.append((arrays, schemas, n))

        def run(iters: int) -> int:
            status = lib.bench_run(self._fn, n, array_ptrs, type_ptrs, length, gids, ngroups, iters,
                                   self._elapsed, self._err, 1024)
            if status != 0:
                raise RuntimeError(ffi.string(self._err).decode())
            keep  # noqa: B018 -- the exported structs and the arrays must outlive the runner
            return int(self._elapsed[0])

        return run

    def close(self) -> None:
        for arrays, schemas, n in self._args:
            for i in range(n):
                for s in (arrays + i, schemas + i):
                    if s.release != self._ffi.NULL:
                        s.release(s)
        self._args.clear()
        self._lib.bench_close(self._fn)


def settle_malloc() -> None:
    """Raise glibc's mmap threshold to its ceiling (32 MiB) by freeing one large malloc block.

    glibc serves a request above its mmap threshold (128 KiB at start) with a fresh mmap, whose
    pages fault in on first touch, and raises the threshold to the size of such a block when it
    is freed. A valloc() block asks a page more than it returns, so a result freed and asked
    again at the same size is mapped afresh every time, unless something larger was freed
    before: whether a 1 MB result costs a heap allocation or 256 page faults depends on the
    process's history. Settling the threshold first makes the function tables measure the call
    path, not that history; the history itself is measured apart, in fresh processes
    (function_call.py's allocator check)."""
    ffi = cffi.FFI()
    ffi.cdef("void* malloc(size_t); void free(void*);")
    libc = ffi.dlopen(None)
    block = libc.malloc(31 << 20)
    ffi.cast("char*", block)[0] = b"\0"
    libc.free(block)


def py_runner(f: Callable[[Any, Any], Any], a: Any, b: Any) -> Runner:
    """A runner calling ``f(a, b)``; the result is dropped at once, so its release is timed too."""
    def run(iters: int) -> int:
        rng = range(iters)
        t0 = time.perf_counter_ns()
        for _ in rng:
            f(a, b)
        return time.perf_counter_ns() - t0
    return run


def _calibrate(run: Runner, target_s: float) -> int:
    """The number of iterations that takes about ``target_s`` (at least one)."""
    run(1)  # warm-up: first-call costs (exports, type caches, page faults) are not measured
    iters = 1
    while True:
        ns = run(iters)
        if ns >= target_s * 1e9 / 10 or iters >= 1 << 30:
            return max(1, round(iters * target_s * 1e9 / max(ns, 1)))
        iters *= 10 if ns < target_s * 1e9 / 100 else 4


STATS = {"min": min, "median": statistics.median}
METER = LoadMeter()
"""The load meter of this process's measurements (method() sets its threshold and strictness)."""

POINT_BUDGET_S = 4.0
"""Rounds are cut (to no fewer than MIN_ROUNDS) so that one point takes about this long."""
MIN_ROUNDS = 5


def measure_spread(cases: dict[str, Runner], target_s: float, rounds: int, label: str = "",
                   meter: LoadMeter | None = None) -> dict[str, Spread]:
    """Nanoseconds per iteration of each case over ``rounds`` interleaved rounds: min/median/max."""
    return {name: Spread.of(s) for name, s in measure_rounds(cases, target_s, rounds, label, meter).items()}


def measure_rounds(cases: dict[str, Runner], target_s: float, rounds: int, label: str = "",
                   meter: LoadMeter | None = None) -> dict[str, list[float]]:
    """Nanoseconds per iteration of each case in each of ``rounds`` interleaved rounds.

    With a ``meter`` the point is bracketed by its load samples (``label`` names it); a strict
    meter re-measures a point that saw load, twice at most, then refuses."""
    meter = meter if meter is not None else METER
    for _ in range(3):
        meter.start(label)
        samples = _measure(cases, target_s, rounds)
        point = meter.stop(label)
        if not (meter.strict and point.busy(meter.threshold)):
            return samples
        print(f"  {label}: others used {point.during:.2f} cores during it; measuring again", file=sys.stderr)
    refuse(f"{label}: the machine stayed busy over three attempts; --strict refuses the figures")
    return samples


def measure(cases: dict[str, Runner], target_s: float, rounds: int, stat: str = "min",
            label: str = "") -> dict[str, float]:
    """Nanoseconds per iteration of each case: the fastest (or median) of ``rounds`` interleaved rounds."""
    return {name: s.pick(stat) for name, s in measure_spread(cases, target_s, rounds, label).items()}


def _measure(cases: dict[str, Runner], target_s: float, rounds: int) -> dict[str, list[float]]:
    iters: dict[str, int] = {}
    round_ns = 0.0
    for name, run in cases.items():
        iters[name] = _calibrate(run, target_s)
        round_ns += run(iters[name])
    rounds = max(min(rounds, MIN_ROUNDS), min(rounds, int(POINT_BUDGET_S * 1e9 / max(round_ns, 1))))
    samples: dict[str, list[float]] = {name: [] for name in cases}
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, run in cases.items():
                samples[name].append(run(iters[name]) / iters[name])
    finally:
        if enabled:
            gc.enable()
    return samples


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """One line naming the machine and the software measured."""
    import plutino

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{os.cpu_count()} CPUs ({usable} usable), {cpu_model()}; "
            f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
            f"pyarrow {pa.__version__}, plutino {getattr(plutino, '__version__', '?')}")


def add_method_options(parser: Any) -> None:
    """The options every script takes: --quick, --stat and the load options (_figures)."""
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (noisier)")
    parser.add_argument("--stat", choices=sorted(STATS), default="min",
                        help="report each case's fastest round (default) or its median round")
    add_load_options(parser)


def method(args: Any) -> tuple[float, int, str]:
    """(seconds per round, rounds, a line describing them) for the parsed options."""
    target_s, rounds = (0.005, 7) if args.quick else (0.01, 31)
    METER.threshold, METER.strict = args.load_threshold, args.strict
    which = "fastest" if args.stat == "min" else "median"
    return target_s, rounds, (f"method: {which} of up to {rounds} interleaved rounds (at least {MIN_ROUNDS}, "
                              f"about {POINT_BUDGET_S:g} s per point) of >= {target_s * 1000:g} ms per case"
                              f"{' (--quick)' if args.quick else ''}")


def fmt_ns(ns: float) -> str:
    """A duration per row: 3 significant figures, no exponent."""
    if ns >= 100:
        return f"{ns:,.0f}"
    if ns >= 10:
        return f"{ns:.1f}"
    return f"{ns:.2f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A plain text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


if __name__ == "__main__":
    print("machine:", machine())

