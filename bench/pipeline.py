"""Benchmark 3: a whole pipeline through the real rule engine, against the same work done by hand.

    native source "random" -> WHERE temperature > 50 -> native function -> native sink "count"

The bundled ``random`` source (interval 0: as fast as it is asked; ``batch_size`` rows a batch;
pattern ``{"temperature": 100.0, "humidity": 100.0}``, so half the rows pass the WHERE) feeds
a stream ``demo (temperature FLOAT, humidity FLOAT)``; the rule

    SELECT humidity, mul2add1(temperature) AS t2 FROM demo WHERE temperature > 50

calls ``fastmath.mul2add1`` and sends its rows to ``count`` (bench/count_sink.c, compiled at
run time: it adds up the rows and does nothing else). The rule runs in a
:class:`plutino.engine.RuleManager` with a :class:`plutino.registry.Registry` holding those
native plugins, exactly as the server runs it: threads, queues, metrics and all.

Cases, at batches of 1K, 16K and 64K rows (events/s counts the rows the source produced):

  raw loop          the baseline: the same plugins driven by a Python loop without the engine,
                    ``source.next() -> pc.greater -> batch.filter -> fn.call -> sink.write``;
  engine            the rule above ("engine / raw" is the engine's cost);
  engine, Python fn the rule with the function replaced by a Python function plugin written with
                    pyarrow.compute (``pc.add(pc.multiply(x, 2), 1)``);
  engine, per-row   the rule with a per-row Python function (``to_pylist``, a loop, ``pa.array``),
                    on fewer rows;
  engine in a worker  the same rule as "engine", run as the server runs it: through a
                    :class:`plutino.host.Host` (the control plane) on a temporary data directory,
                    which places it on a worker process (one pool worker, one spare). The three
                    plugins are packed and installed as packages (the count sink too); the
                    source's config is written to the data directory's etc/sources/random.yaml.
                    The worker is pinned to the same CPU as this process, so "worker / engine" is
                    what the data plane costs a rule on one core (the goal: >= 0.9). The control
                    plane stays in this process, on that CPU too (it does next to nothing while the
                    rule runs: its supervisor reads the worker's call board 20 times a second).

Every run ends when the bounded source has produced its rows and the sink has written the
last of them; the count sink's total is checked against the raw loop's (the same seed gives
the same rows), and so is the worker's (read from the file the count sink writes, and from the
rule's status). The cases run round-robin for several rounds and each one's fastest round is
reported (``--stat median``: the median), as in the other scripts. The process is pinned to one
CPU (``--all-cpus`` lets it use every CPU), so "events/s" is per core: the engine's threads
share that core. The issue's goal: >= 100 M events/s at 16K rows.

A run in the worker is timed like the in-process one: from the moment this process asks the
host to start the rule to the rule's own stop timestamp (taken in the worker once the last row
was written and the instances closed); the start request's round trip to the worker is in it.
While it runs this process only looks for the count sink's file (no status requests, which
would take the worker's CPU). The first rule starts the worker and its spare; the script waits
for the spare's start-up before it measures. Beside events/s it prints the CPU time per event
that "engine" and the worker case spent while their rules ran, summed over all the rounds (less
sensitive to other processes than the wall clock): this process's for "engine"; the worker
process's, and this process's (the control plane) beside it, for the worker case.

    python bench/pipeline.py [--quick] [--stat min|median] [--plugins DIR] [--batches 1024,16384,65536]
                             [--all-cpus] [--no-worker]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

import _harness as h
from _pipeline_rule import PATTERN, SQL, STREAM, WorkerBench, sink_rows, source_config
from plutino.engine import BUILTIN_NAMES, RuleManager
from plutino.native.loader import load_plugin
from plutino.registry import Registry
from plutino_contract.protocols import Context, EndOfStream

BATCHES = [1024, 16384, 65536]
GOAL_BATCH, GOAL_EVENTS_S = 16384, 100e6
GOAL_WORKER_RATIO = 0.9  # the rule in a worker process, against the same rule in this process
PER_ROW_SHARE = 16  # the per-row case runs on 1/16 of the rows (it is ~30x slower)


# -- Python function plugins: the same function as fastmath.mul2add1, in Python ---------------

class _PyFunction:
    """``name(x)`` = x * 2 + 1 over float64, as a Python function plugin (the contract's
    Function Protocol; its own FunctionInstance)."""

    aggregate = False
    min_args = max_args = 1

    def __init__(self, name: str, per_row: bool) -> None:
        self.name = name
        self.per_row = per_row

    def validate(self, arg_types: Sequence[Any]) -> pa.DataType:
        t = arg_types[0].type if isinstance(arg_types[0], pa.Field) else arg_types[0]
        if t != pa.float64():
            raise ValueError(f"{self.name}: the argument must be a float64, got {t}")
        return pa.float64()

    def create(self, context: Context) -> "_PyFunction":
        return self

    def call(self, args: Sequence[pa.Array], length: int) -> pa.Array:
        x = args[0]
        if self.per_row:
            return pa.array([None if v is None else v * 2 + 1 for v in x.to_pylist()], pa.float64())
        return pc.add(pc.multiply(x, 2.0), 1.0)

    def close(self) -> None:
        pass


class PyMath:
    """A Python function library: ``py_mul2add1`` (pyarrow.compute) and ``row_mul2add1`` (per row)."""

    name, version, kind = "pymath", "1.0.0", "function"

    def __init__(self) -> None:
        self.functions = [_PyFunction("py_mul2add1", per_row=False), _PyFunction("row_mul2add1", per_row=True)]


# -- the cases ----------------------------------------------------------------------------------

class Bench:
    """The plugins, a registry and a rule manager; each run returns (seconds, rows written)."""

    def __init__(self, plugins: Path, count_so: Path) -> None:
        self.random = load_plugin(plugins / "sources" / "random.so", kind="source")
        self.fastmath = load_plugin(plugins / "functions" / "fastmath.so", kind="function")
        self.count = load_plugin(count_so, kind="sink")
        self.registry = Registry(BUILTIN_NAMES)
        for plugin in (self.random, self.fastmath, self.count, PyMath()):
            self.registry.register(plugin)
        self.config: dict[str, Any] = {}
        self.manager = RuleManager(self.registry, config_for=self._config_for)
        self.manager.create_stream(STREAM)
        self.tmp = Path(tempfile.mkdtemp(prefix="plutino-bench-"))
        self.runs = 0
        self.cpu_s: dict[str, float] = {}  # CPU time of this process in the timed runs, by function

    def _config_for(self, kind: str, name: str, conf_key: str, props: Any) -> dict[str, Any]:
        return dict(self.config) if kind == "source" else dict(props)

    def close(self) -> None:
        """Stop the rule manager; remove the count sink's files."""
        self.manager.shutdown()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def raw(self, batch: int, rows: int) -> tuple[float, int]:
        """The baseline: the engine's work done by a plain Python loop on one thread."""
        src = self.random.create(source_config(batch, rows), Context(plugin_name="random"))
        fn = self.fastmath.functions["mul2add1"]
        fn.validate([pa.float64()])
        inst = fn.create(Context(plugin_name="fastmath"))
        sink = self.count.create({}, Context(plugin_name="count"))
        fifty = pa.scalar(50.0)
        written = 0
        try:
            sink.open()
            started = time.perf_counter()
            while True:
                try:
                    b = src.next(0.1)
                except EndOfStream:
                    break
                if b is None:
                    continue
                kept = b.filter(pc.greater(b.column(0), fifty))
                t2 = inst.call([kept.column(0)], kept.num_rows)
                out = pa.RecordBatch.from_arrays([kept.column(1), t2], names=["humidity", "t2"])
                sink.write(out)
                written += out.num_rows
                del b, kept, t2, out  # as the engine does: nothing of a batch outlives its turn
            return time.perf_counter() - started, written
        finally:
            src.close()
            sink.close()
            inst.close()

    def engine(self, fn: str, batch: int, rows: int) -> tuple[float, int]:
        """The rule, from its start until the sink has written the last row of the bounded source."""
        self.runs += 1
        rule_id = f"bench{self.runs}"
        out = self.tmp / f"{rule_id}.txt"
        self.config = source_config(batch, rows)
        m = self.manager
        m.create_rule({"id": rule_id, "sql": SQL.format(fn=fn), "triggered": False,
                       "actions": [{"count": {"path": str(out)}}]})
        try:
            cpu0 = time.process_time()
            started = time.time()
            m.start_rule(rule_id)
            runtime = m.runtime(rule_id)
            # Polled rarely: a thread waking up every 0.5 ms takes the GIL 2000 times a second,
            # which cost the rule 15% on one core. The time is the rule's own stop timestamp
            # (ms), set once the last row was written and the instances closed.
            while runtime.state == "running" or not runtime.last_stop_ms:
                time.sleep(0.01)
            self.cpu_s[fn] = self.cpu_s.get(fn, 0.0) + time.process_time() - cpu0
            elapsed = max(runtime.last_stop_ms / 1000 - started, 1e-3)
            if runtime.state != "stopped: end of stream":
                sys.exit(f"rule {rule_id} stopped early: {runtime.state}")
            status = m.rule_status(rule_id)
        finally:
            m.delete_rule(rule_id)
        written = status[next(k for k in status if k.startswith("sink_count_") and k.endswith("_rows_out_total"))]
        told = sink_rows(out)
        if told != written:
            sys.exit(f"rule {rule_id}: the count sink saw {told} rows but the engine says it wrote {written}")
        return elapsed, written


def rows_for(batch: int, events_s_guess: float, seconds: float) -> int:
    """Whole batches, about ``seconds`` long at ``events_s_guess``, at least 8 batches."""
    return max(8, round(events_s_guess * seconds / batch)) * batch


WORKER = "engine in a worker"


def run_point(bench: Bench, worker: WorkerBench | None, batch: int, seconds: float, rounds: int,
              stat: str) -> tuple[dict[str, float], dict[str, float], dict[str, list[float]]]:
    """events/s of each case at one batch size: interleaved rounds, the fastest (or median);
    and the CPU time per event (ns) of "engine" and the worker case over all their rounds
    (this process's CPU, plus the worker's for the worker case)."""
    cases: dict[str, Callable[[int], tuple[float, int]]] = {
        "raw loop": lambda n: bench.raw(batch, n),
        "engine": lambda n: bench.engine("mul2add1", batch, n),
        "engine, Python fn": lambda n: bench.engine("py_mul2add1", batch, n),
        "engine, per-row": lambda n: bench.engine("row_mul2add1", batch, n),
    }
    if worker is not None:
        cases[WORKER] = lambda n: worker.engine(batch, n)
    sizes: dict[str, int] = {}
    for name, run in cases.items():  # calibrate on a short run (which also warms up)
        probe = rows_for(batch, 5e6, 0.02) // (PER_ROW_SHARE if name == "engine, per-row" else 1)
        probe = max(batch * 4, probe - probe % batch)
        took, _ = run(probe)
        sizes[name] = rows_for(batch, probe / took, seconds)
    # the same rows through the raw loop and the engine must give the same count
    n = sizes["raw loop"]
    _, want = bench.raw(batch, n)
    _, got = bench.engine("mul2add1", batch, n)
    if got != want:
        sys.exit(f"at {batch} rows a batch the engine wrote {got} rows, the raw loop {want}: the benchmark is void")
    if worker is not None:
        _, got = worker.engine(batch, n)
        if got != want:
            sys.exit(f"at {batch} rows a batch the engine in a worker wrote {got} rows, the raw loop {want}: "
                     "the benchmark is void")
    samples: dict[str, list[float]] = {name: [] for name in cases}
    cpu0 = (bench.cpu_s.get("mul2add1", 0.0), worker.worker_cpu_s if worker else 0.0,
            worker.control_cpu_s if worker else 0.0)
    label = f"{batch:,} rows a batch"
    h.METER.start(label)
    for _ in range(rounds):
        for name, run in cases.items():
            gc.collect()
            took, _ = run(sizes[name])
            samples[name].append(sizes[name] / took)
    if h.METER.stop(label).busy(h.METER.threshold) and h.METER.strict:
        h.refuse(f"{label}: measured under load; --strict refuses the figures")
    cpu = {"engine": bench.cpu_s["mul2add1"] - cpu0[0]}
    if worker is not None:
        cpu[WORKER] = worker.worker_cpu_s - cpu0[1]
        cpu["control plane"] = worker.control_cpu_s - cpu0[2]
    pick = max if stat == "min" else statistics.median  # the fastest round is the highest rate
    return ({name: pick(s) for name, s in samples.items()},
            {name: c / (sizes[WORKER if name == "control plane" else name] * rounds) * 1e9
             for name, c in cpu.items()}, samples)


def spreads(samples: dict[int, dict[str, list[float]]], rec: h.Record) -> str:
    """min/median/max of each case's rounds and of the engine's ratio to the raw loop (round by
    round: the two ran side by side); the headlines at GOAL_BATCH into ``rec``."""
    lines = ["min/median/max over the rounds (M events/s; engine / raw loop round by round)"]
    for batch, r in samples.items():
        busy = h.METER.marker(f"{batch:,} rows a batch")
        ratio = h.Spread.of([e / raw for e, raw in zip(r["engine"], r["raw loop"])])
        cases = "; ".join(f"{name} {h.Spread.of(v).scaled(1e-6).text('{:.1f}')}" for name, v in r.items())
        lines.append(f"{batch:>6,}{busy or ' '} {cases}; engine / raw loop {ratio.text()}")
        if batch == GOAL_BATCH:
            rec.headline("engine.events", f"native source -> WHERE -> native function -> native sink, rule engine, "
                         f"{batch // 1024}K-row batches, one core: M events/s", h.Spread.of(r["engine"]).scaled(1e-6),
                         "M", "-", True, bool(busy))
            rec.headline("engine.ratio", f"the same pipeline, {batch // 1024}K-row batches: engine / raw loop",
                         ratio, "x", "the same plugins in a plain Python loop", True, bool(busy))
    return "\n".join(lines)


def rss_kib() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB: resident now, and its peak."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    h.add_method_options(parser)
    parser.add_argument("--plugins", help="a built plugins/ folder (default: build native_plugins/ into "
                                          "build/bench-native)")
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)), help="rows per batch, comma-separated")
    parser.add_argument("--all-cpus", action="store_true", help="do not pin the process to one CPU")
    parser.add_argument("--no-worker", action="store_true", help="skip the case through a worker process")
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    seconds, rounds = (0.1, 3) if args.quick else (0.25, 7)
    plugins = h.plugin_dir(args.plugins, ["random", "fastmath"])
    count_so = h.count_sink()
    machine = h.machine()  # before the pinning, which makes one CPU usable
    print("machine:", machine)
    cpus = sorted(os.sched_getaffinity(0))
    if not args.all_cpus:
        os.sched_setaffinity(0, {cpus[-1]})
    which = "fastest" if args.stat == "min" else "median"
    h.METER.threshold, h.METER.strict = args.load_threshold, args.strict
    method_line = (f"method: {which} of {rounds} interleaved rounds of about {seconds:g} s per case"
                   f"{' (--quick)' if args.quick else ''}; "
                   + ("all CPUs" if args.all_cpus else f"pinned to CPU {cpus[-1]} (one core)"))
    print(method_line)
    print(f"pipeline: random {PATTERN} -> {SQL.format(fn='mul2add1')} -> count")
    h.settle_malloc()
    bench = Bench(plugins, count_so)
    idle_rss, _ = rss_kib()
    worker = None
    if not args.no_worker:
        worker = WorkerBench(plugins, count_so, None if args.all_cpus else {cpus[-1]})
    results: dict[int, dict[str, float]] = {}
    cpu_ns: dict[int, dict[str, float]] = {}
    samples: dict[int, dict[str, list[float]]] = {}
    try:
        for batch in batches:
            results[batch], cpu_ns[batch], samples[batch] = run_point(bench, worker, batch, seconds, rounds, args.stat)
            print(f"  {batch:>6,} rows a batch: " + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in results[batch].items())
                  + " M events/s", file=sys.stderr)
        rss, peak = rss_kib()
    finally:
        bench.close()
        if worker is not None:
            worker.close()

    cases = list(next(iter(results.values())))
    rows = []
    for batch, r in results.items():
        base = r["raw loop"]
        rows.append([f"{batch:,}", f"{base / 1e6:.1f}",
                     *(f"{r[c] / 1e6:.1f} ({r[c] / base:.2f}x)" for c in cases[1:])]
                    + ([f"{r[WORKER] / r['engine']:.2f}"] if WORKER in r else []))
    print()
    print("M events/s (in brackets: relative to the raw loop; higher is faster)")
    print(h.table(["rows a batch", *cases] + (["worker / engine"] if WORKER in cases else []), rows))
    print()
    for batch, r in results.items():
        per_batch = batch / r["engine"] - batch / r["raw loop"]
        print(f"at {batch:,} rows a batch the engine costs {per_batch * 1e6:.1f} us a batch more than the raw loop")
    if worker is not None:
        print()
        print("CPU time per event while the rule runs, all rounds (ns; clock ticks of 10 ms summed over the rounds)")
        print(h.table(["rows a batch", "engine", "worker process", "control plane meanwhile", "engine / worker",
                       "engine / (worker + control plane)"],
                      [[f"{b:,}", f"{c['engine']:.1f}", f"{c[WORKER]:.1f}", f"{c['control plane']:.2f}",
                        f"{c['engine'] / c[WORKER]:.2f}", f"{c['engine'] / (c[WORKER] + c['control plane']):.2f}"]
                       for b, c in cpu_ns.items()]))
        print()
    for batch, r in results.items():
        if WORKER in r:
            ratio = r[WORKER] / r["engine"]
            ok = "meets" if ratio >= GOAL_WORKER_RATIO else "MISSES"
            print(f"at {batch:,} rows a batch the rule in a worker runs at {ratio:.2f} of the in-process engine "
                  f"({(batch / r[WORKER] - batch / r['engine']) * 1e6:+.1f} us a batch); {ok} the goal >= "
                  f"{GOAL_WORKER_RATIO:g}")
    if GOAL_BATCH in results:
        got = results[GOAL_BATCH]["engine"]
        ok = "meets" if got >= GOAL_EVENTS_S else "MISSES"
        print(f"at {GOAL_BATCH:,} rows a batch the engine moves {got / 1e6:.1f} M events/s on "
              f"{'all CPUs' if args.all_cpus else 'one core'}; {ok} the goal >= {GOAL_EVENTS_S / 1e6:g} M")
    print()
    print(spreads(samples, rec := h.Record("pipeline", method_line, machine)))
    print(h.METER.summary())
    if not args.no_save:
        print(f"results saved to {rec.save(h.METER).relative_to(h.ROOT)}")
    print(f"memory: RSS {idle_rss / 1024:.0f} MiB with the plugins loaded, {rss / 1024:.0f} MiB after the runs, "
          f"peak {peak / 1024:.0f} MiB (VmHWM)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
