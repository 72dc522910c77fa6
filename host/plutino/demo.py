"""The demo job: bundled native plugins wired by hand into one pipeline, until the engine exists.

    python -m plutino.demo [--seconds N] [--data-dir DIR]      (what `make run` runs)

It loads the plugins shipped inside the installed package (``plutino/bundled/``) with
:mod:`plutino.loader` and moves batches through them::

    random (source) -> fastmath.mul2add1(temperature), geo.haversine(lat, lon, Paris)
                    -> file (sink) at <data-dir>/out/demo.jsonl

printing a status line every second and a summary at the end. ``--seconds 0`` runs until
Ctrl-C; Ctrl-C always stops cleanly (the sink is flushed and closed). Every batch crosses the
ABI as an Arrow C Data Interface array, so this is the same data path a rule will take.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence, TextIO

import pyarrow as pa

from plutino.errors import PlutinoError

#: The overrides of the random source's ``default:`` config for this demo: a batch of 100 rows
#: every 100 ms, and a pattern with a position, so geo.haversine has something to measure.
SOURCE_OVERRIDES: dict[str, Any] = {
    "interval": 100,
    "batch_size": 100,
    "pattern": {"temperature": 100.0, "humidity": 100, "name": "sensor", "lat": 90.0, "lon": 180.0},
}
PARIS = (48.8566, 2.3522)

_FIX = "build and install them with `make build` (or `pip install ./contract .`)"


class DemoError(PlutinoError):
    """The demo cannot run: a plugin is missing or misbehaves. The message says how to fix it."""


@dataclass
class Plugins:
    """The loaded plugins the demo needs, and where they were found."""

    random: Any
    file: Any
    fastmath: Any
    geo: Any
    root: Path

    def config(self, kind: str, name: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """The plugin's shipped ``<name>.yaml`` ``default:`` section overlaid by ``overrides``."""
        return plugin_config(self.root / f"{kind}s" / f"{name}.yaml", overrides)


@dataclass
class Counters:
    batches: int = 0
    rows_in: int = 0
    rows_out: int = 0
    last: dict[str, Any] = field(default_factory=dict)


def bundled_dir() -> Path:
    """``plutino/bundled`` inside the installed package: where CMake installs the examples."""
    import plutino

    return Path(plutino.__file__).resolve().parent / "bundled"


def load_plugins(root: Path) -> Plugins:
    """Load random, file, fastmath and geo from ``root/{sources,sinks,functions}``."""
    from plutino.loader import load_plugin

    wanted = {"random": "source", "file": "sink", "fastmath": "function", "geo": "function"}
    loaded: dict[str, Any] = {}
    missing = [f"{kind} '{name}' ({root / (kind + 's') / (name + '.so')})"
               for name, kind in wanted.items() if not (root / f"{kind}s" / f"{name}.so").is_file()]
    if missing:
        raise DemoError(f"the demo needs bundled plugins that are not installed: {', '.join(missing)}; {_FIX}")
    for name, kind in wanted.items():
        loaded[name] = load_plugin(root / f"{kind}s" / f"{name}.so", kind=kind)
    if "mul2add1" not in loaded["fastmath"].functions:
        raise DemoError(f"plugin 'fastmath' at {loaded['fastmath'].path} has no function mul2add1 "
                        f"(it has {sorted(loaded['fastmath'].functions)}); {_FIX}")
    if "haversine" not in loaded["geo"].functions:
        raise DemoError(f"plugin 'geo' at {loaded['geo'].path} has no function haversine; {_FIX}")
    return Plugins(root=root, **loaded)


def plugin_config(yaml_path: Path, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The ``default:`` section of a plugin's yaml (when it ships one) overlaid by ``overrides``:
    top-level keys replace, as eKuiper overlays a stream's properties on its conf key."""
    config: dict[str, Any] = {}
    if yaml_path.is_file():
        import yaml

        doc = yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}
        config.update(doc.get("default") or {})
    config.update(overrides)
    return config


def _with_columns(batch: pa.RecordBatch, extra: Sequence[tuple[str, pa.Array]]) -> pa.RecordBatch:
    names = list(batch.schema.names) + [name for name, _ in extra]
    return pa.RecordBatch.from_arrays(list(batch.columns) + [array for _, array in extra], names=names)


def run(seconds: float, data_dir: Path, plugins_root: Path | None = None, out: TextIO = sys.stdout) -> Counters:
    """Run the pipeline for ``seconds`` (0: until Ctrl-C) and return what it counted."""
    from plutino_contract.protocols import Context

    plugins = load_plugins(plugins_root or bundled_dir())
    out_path = data_dir / "out" / "demo.jsonl"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.unlink(missing_ok=True)  # the file sink appends: each run starts a fresh file

    def context(plugin: str, op: str) -> Context:
        return Context(plugin_name=plugin, rule_id="demo", op_id=op, data_dir=str(data_dir))

    config = plugins.config("source", "random", SOURCE_OVERRIDES)
    print(f"plutino demo: random -> mul2add1(temperature), haversine(lat, lon, Paris) -> {out_path}", file=out)
    print(f"  plugins from {plugins.root}; source config {config}", file=out)
    print("  " + ("running until Ctrl-C" if seconds <= 0 else f"running for {seconds:g} s (Ctrl-C stops)"), file=out)
    counters = Counters()
    started = time.monotonic()
    interrupted = False
    # Everything created is closed on the way out (in reverse order), whatever stops the loop.
    with contextlib.ExitStack() as opened:
        try:
            source = plugins.random.create(config, context("random", "source"))
            opened.callback(_quietly, source.close)
            sink = plugins.file.create(plugins.config("sink", "file", {"path": str(out_path)}), context("file", "sink"))
            opened.callback(_quietly, sink.close)
            mul2add1 = plugins.fastmath.functions["mul2add1"].create(context("fastmath", "mul2add1"))
            opened.callback(_quietly, mul2add1.close)
            haversine = plugins.geo.functions["haversine"].create(context("geo", "haversine"))
            opened.callback(_quietly, haversine.close)
            source.open()
            sink.open()
            opened.callback(_quietly, sink.flush)
            _loop(seconds, source, sink, mul2add1, haversine, counters, started, out)
        except KeyboardInterrupt:
            interrupted = True
    elapsed = time.monotonic() - started
    rate = counters.rows_out / elapsed if elapsed > 0 else 0.0
    print(f"plutino demo {'interrupted' if interrupted else 'done'}: {counters.batches} batches, "
          f"{counters.rows_in} rows in, {counters.rows_out} rows out in {elapsed:.1f} s "
          f"({rate:,.0f} rows/s); output in {out_path}", file=out)
    return counters


def _loop(seconds: float, source: Any, sink: Any, mul2add1: Any, haversine: Any, counters: Counters,
          started: float, out: TextIO) -> None:
    """Pull, compute, write until the time is up or the source ends; a status line a second."""
    from plutino_contract.protocols import EndOfStream

    paris_lat, paris_lon = pa.array([PARIS[0]]), pa.array([PARIS[1]])
    next_status = started + 1.0
    while seconds <= 0 or time.monotonic() - started < seconds:
        try:
            batch = source.next(0.2)
        except EndOfStream:
            print("  the source ended", file=out)
            return
        if batch is not None and batch.num_rows:
            n = batch.num_rows
            result = _with_columns(batch, [
                ("temperature_x2_plus_1", mul2add1.call([batch.column("temperature")], n)),
                ("km_to_paris", haversine.call([batch.column("lat"), batch.column("lon"), paris_lat, paris_lon], n)),
            ])
            sink.write(result)
            counters.batches += 1
            counters.rows_in += n
            counters.rows_out += result.num_rows
            counters.last = {name: result.column(name)[n - 1].as_py() for name in result.schema.names}
        now = time.monotonic()
        if now >= next_status:
            print(f"  [{now - started:5.1f}s] rows in {counters.rows_in}  out {counters.rows_out}  "
                  f"last {_fmt(counters.last)}", file=out, flush=True)
            next_status += 1.0


def _quietly(step: Any) -> None:
    """Run a close/flush step; a second Ctrl-C while shutting down does not cut it short."""
    try:
        step()
    except KeyboardInterrupt:
        pass


def _fmt(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plutino.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run; 0 = until Ctrl-C (default 10)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where out/demo.jsonl goes (default $PLUTINO_HOME, else ./plutino_data)")
    parser.add_argument("--plugins-dir", type=Path, default=None,
                        help="a folder with sources/ sinks/ functions/ (default: the installed package's bundled/)")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or Path(os.environ.get("PLUTINO_HOME") or "plutino_data")
    signal.signal(signal.SIGTERM, _stop)  # `kill` stops as cleanly as Ctrl-C
    try:
        run(args.seconds, data_dir.absolute(), args.plugins_dir)
    except PlutinoError as exc:
        print(f"plutino demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C while loading
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
