"""What makes a benchmark's figures reproducible: their spread, the load they saw, a saved record.

* :class:`Spread` -- min/median/max of a case's rounds. The scripts print all three, so a reader
  sees how far a figure moves within one run, not only the one value the table is built from.
* :class:`LoadMeter` -- the CPU that *other* processes used, from ``/proc/stat`` minus this
  process tree's own CPU (``/proc/<pid>/stat`` of this process and its descendants: a worker or
  a mosquitto the script started is part of the measurement, not load). It is sampled for a
  short idle window before each point and over the point itself. A point during which others
  used more than ``--load-threshold`` cores (default 0.25) is marked ``!`` and listed under the
  table; with ``--strict`` the script waits for a quiet spell before a point, re-measures a
  point that saw load, and refuses (exit 3) if the machine never quietens.
* :class:`Record` -- the figures of one run as JSON under ``build/bench/<script>/`` with the
  date, the machine, the commit and the load; ``bench/report.py`` renders the README's and
  docs/performance.md's tables from these records (``make bench-report``), so the docs show
  what ``make bench`` printed.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "build" / "bench"
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
LOAD_THRESHOLD = 0.25
"""Cores' worth of other processes' CPU above which a point counts as measured under load."""
QUIET_WAIT_S = 60.0
"""With --strict: how long to wait for a quiet machine before a point, in all."""


class Spread(NamedTuple):
    """The fastest, median and slowest round of one case (in the unit of its samples)."""

    min: float
    median: float
    max: float

    @classmethod
    def of(cls, samples: list[float]) -> Spread:
        return cls(min(samples), statistics.median(samples), max(samples))

    def pick(self, stat: str) -> float:
        return self.median if stat == "median" else self.min

    def scaled(self, k: float) -> Spread:
        """Each figure times ``k`` (a negative ``k`` swaps min and max)."""
        lo, hi = self.min * k, self.max * k
        return Spread(min(lo, hi), self.median * k, max(lo, hi))

    def text(self, fmt: str = "{:.2f}") -> str:
        return f"{fmt.format(self.min)}/{fmt.format(self.median)}/{fmt.format(self.max)}"


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) of ``pid`` and its living descendants."""
    total = 0.0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICK
            for task in Path(f"/proc/{p}/task").iterdir():
                kids = (task / "children").read_text().split()
                stack.extend(int(k) for k in kids)
        except (OSError, IndexError, ValueError):
            continue
    return total


def _machine_busy_s() -> float:
    """CPU seconds all CPUs spent not idle since boot (user, nice, system, irq, softirq, steal)."""
    try:
        v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / _TICK


@dataclass
class PointLoad:
    """Other processes' CPU, in cores, before a point and during it."""

    label: str
    before: float
    during: float
    loadavg: str

    def busy(self, threshold: float) -> bool:
        return max(self.before, self.during) > threshold


@dataclass
class LoadMeter:
    """Samples other processes' CPU around each measured point (see the module's docstring)."""

    threshold: float = LOAD_THRESHOLD
    strict: bool = False
    window_s: float = 0.3
    points: list[PointLoad] = field(default_factory=list)
    _t0: float = 0.0
    _busy0: float = 0.0
    _own0: float = 0.0
    _before: float = 0.0

    def _sample(self) -> tuple[float, float, float]:
        return time.monotonic(), _machine_busy_s(), _tree_cpu_s(os.getpid())

    @staticmethod
    def _others(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
        wall = max(b[0] - a[0], 1e-6)
        return max(0.0, ((b[1] - a[1]) - (b[2] - a[2])) / wall)

    def quiet(self) -> float:
        """Other processes' CPU over a short idle window now (cores)."""
        a = self._sample()
        time.sleep(self.window_s)
        return self._others(a, self._sample())

    def start(self, label: str) -> None:
        """Before a point: sample the machine idle; with ``strict``, wait for it to be quiet."""
        before = self.quiet()
        waited = 0.0
        while self.strict and before > self.threshold:
            if waited >= QUIET_WAIT_S:
                refuse(f"{label}: other processes used {before:.2f} cores for {QUIET_WAIT_S:g} s (threshold "
                       f"{self.threshold:g}); --strict refuses to measure on a busy machine")
            time.sleep(1.0)
            waited += 1.0 + self.window_s
            before = self.quiet()
        self._before = before
        self._t0, self._busy0, self._own0 = self._sample()

    def stop(self, label: str) -> PointLoad:
        """After a point: what others used during it. Recorded, and returned."""
        during = self._others((self._t0, self._busy0, self._own0), self._sample())
        try:
            loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        except OSError:
            loadavg = "?"
        point = PointLoad(label, round(self._before, 3), round(during, 3), loadavg)
        self.points.append(point)
        return point

    def marker(self, label: str) -> str:
        """``!`` if the last point named ``label`` was measured under load, else ''."""
        for p in reversed(self.points):
            if p.label == label:
                return "!" if p.busy(self.threshold) else ""
        return ""

    def summary(self) -> str:
        """The lines to print under a table: the load over the run and each busy point."""
        if not self.points:
            return "load: not sampled"
        busy = [p for p in self.points if p.busy(self.threshold)]
        worst = max(max(p.before, p.during) for p in self.points)
        lines = [f"load: other processes used up to {worst:.2f} cores ({len(busy)} of {len(self.points)} points "
                 f"over the {self.threshold:g}-core threshold; sampled {self.window_s:g} s before and over each point)"]
        lines += [f"  ! {p.label}: measured under load: others used {p.before:.2f} cores before it and "
                  f"{p.during:.2f} during it (loadavg {p.loadavg})" for p in busy]
        return "\n".join(lines)


def refuse(message: str) -> None:
    print(message, file=sys.stderr)
    sys.exit(3)


def commit() -> str:
    """HEAD's short hash, with ``+dirty`` when the measured code (host, contract, plugins, bench) differs."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "host", "contract", "native_plugins", "bench"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return head + ("+dirty" if dirty else "")


@dataclass
class Record:
    """The figures of one run of one script, saved as JSON for bench/report.py.

    A *headline* is one figure the README shows: its name, unit, spread (min/median/max
    across this run's rounds, or across the values it is computed from), the baseline it is
    compared with and whether higher is better."""

    script: str
    method: str
    machine: str
    headlines: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def headline(self, key: str, name: str, spread: Spread, unit: str, baseline: str, higher_better: bool,
                 busy: bool) -> None:
        self.headlines.append({"key": key, "name": name, "min": spread.min, "median": spread.median,
                               "max": spread.max, "unit": unit, "baseline": baseline,
                               "higher_better": higher_better, "under_load": busy})

    def save(self, load: LoadMeter) -> Path:
        now = _dt.datetime.now(_dt.timezone.utc)
        data = {**asdict(self), "date": now.strftime("%Y-%m-%d %H:%M UTC"), "commit": commit(),
                "load": {"threshold": load.threshold, "points": [asdict(p) for p in load.points]}}
        folder = RESULTS / self.script
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (now.strftime("%Y%m%dT%H%M%S") + ".json")
        path.write_text(json.dumps(data, indent=1))
        return path


def add_load_options(parser: Any) -> None:
    parser.add_argument("--strict", action="store_true",
                        help="wait for a quiet machine before each point and refuse (exit 3) if it stays busy")
    parser.add_argument("--load-threshold", type=float, default=LOAD_THRESHOLD,
                        help="cores of other processes' CPU above which a point counts as under load")
    parser.add_argument("--no-save", action="store_true", help="do not write the results under build/bench/")
