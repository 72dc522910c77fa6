"""A change to the native call path, before and after, in one process: the fair comparison.

Loads ``host/plutino/native/functions.py`` as it is at ``--before`` (a git revision, HEAD by
default) beside the working tree's, gives both adapters the same loaded function, the same
state and the same arrays, and runs them interleaved with the C baseline (bench/direct_driver.c)
in the rounds of ``_harness.measure_rounds``, so a busy machine slows all three alike. Prints,
per function and batch size, the host's cost over C and its speed relative to C as
min/median/max of the rounds, and the load each point saw. Results are checked: both adapters
must give the same array. ``make bench`` skips it (it compares code, not the host with C).

    python bench/_call_ab.py [--before REV] [--rounds 15] [--sizes 1,16384,65536]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import _harness as h
import function_call as fc
from plutino.native.hostapi import NativeContext
from plutino.native.loader import load_plugin
from plutino_contract.protocols import Context

MODULE = "host/plutino/native/functions.py"


def old_module(rev: str, folder: Path) -> object:
    """``functions.py`` at ``rev``, imported under another name."""
    source = subprocess.run(["git", "show", f"{rev}:{MODULE}"], cwd=h.ROOT, capture_output=True, text=True)
    if source.returncode != 0:
        sys.exit(f"--before {rev}: git show failed: {source.stderr.strip()}")
    path = folder / "functions_before.py"
    path.write_text(source.stdout)
    spec = importlib.util.spec_from_file_location("functions_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="HEAD", help="the git revision to compare the working tree with")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--sizes", default="1,16384,65536", help="rows a batch, comma-separated")
    parser.add_argument("--plugins", help="a built plugins/ folder")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    so = h.plugin_dir(args.plugins, ["fastmath"]) / "functions" / "fastmath.so"
    print("machine:", h.machine())
    h.settle_malloc()
    with tempfile.TemporaryDirectory() as tmp:
        old = old_module(args.before, Path(tmp))
        for name, (arg_type, maker, _, _) in fc.FUNCTIONS.items():
            fn = load_plugin(so, kind="function").functions[name]
            fn.validate([arg_type])
            after = fn.create(Context(plugin_name="fastmath"))
            before = old.NativeFunctionInstance(  # type: ignore[attr-defined]
                fn, NativeContext(Context(plugin_name="fastmath")), after._state)
            c = h.DirectFunction(so, name, host_alloc=True)
            data = maker(max(sizes))
            for n in sizes:
                arr = fc.own_buffers(data, n)
                if not before.call([arr], n).equals(after.call([arr], n)):
                    sys.exit(f"{name} at {n} rows: the two adapters' results differ")
                label = f"{name} {n:,} rows"
                r = h.measure_rounds({"C": c.bind([arr], n), "before": h.py_runner(before.call, [arr], n),
                                      "after": h.py_runner(after.call, [arr], n)}, 0.005, args.rounds, label)
                cells = []
                for k in ("before", "after"):
                    cost = h.Spread.of([(x - base) / 1000 for x, base in zip(r[k], r["C"])])
                    speed = h.Spread.of([base / x for x, base in zip(r[k], r["C"])])
                    cells.append(f"{k}: host - C {cost.text()} us, speed vs C {speed.text()}")
                print(f"{label}{h.METER.marker(label) or ' '} C {h.Spread.of(r['C']).scaled(1e-3).text()} us; "
                      + "; ".join(cells))
            c.close()
    print(h.METER.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
