"""One sample on 1 and 2 threads, timed in C: <name>_infer against <name>_infer_parallel on xg_pool.

    python benchmarks/parallel_c.py [--reps 200] [--only L1,L2,L3,FC,ResNet18]

The timing harness (templates/harness.c.j2, mode time) calls both entry points round-robin on the
same input and arena, so Python is out of the way and the ratio is measured call by call. Before
each call an untimed empty parallel-for wakes the pool's worker (warm: the state back-to-back
calls keep it in); --cold skips that, so the first kernel of each call pays the worker's wake-up.
Prints medians and the median per-round ratio (1 thread / 2 threads).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from threads import networks  # noqa: E402
from xnorgen.api import compile_network  # noqa: E402
from xnorgen.target import resolve  # noqa: E402
from xnorgen.toolchain.harness import parse_timing, render_timing  # noqa: E402
from xnorgen.toolchain.output import write_directory  # noqa: E402


def time_parts(net, reps: int, warm: bool, tmp: Path):
    t = resolve("host")
    _, files = compile_network(net, t)
    d = tmp / net.name
    write_directory(files, d / "gen")
    m, n = json.loads(files["manifest.json"]), net.name
    calls = [("one_thread", f"{n}_infer(input, output, a)"),
             ("two_threads", f"{n}_infer_parallel(input, output, a, 2, xg_pool_parallel_for, pool)")]
    src = render_timing(calls, m["input_size"], m["output_size"], m["arena_size"], reps, includes=[f"{n}.h"],
                        pool=2, warm_pool=warm)
    (d / "harness.c").write_text(src)
    subprocess.run([t.cc, *t.cflags, "-pthread", "-I", str(d / "gen"), str(d / "harness.c"), str(d / "gen" / f"{n}.c"),
                    str(d / "gen" / f"{n}_weights.c"), str(d / "gen" / "xg_pool.c"), "-lm", "-o", str(d / "h")],
                   check=True)
    out = subprocess.run([str(d / "h")], capture_output=True, text=True, check=True).stdout
    return parse_timing(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--only", default="L1,L2,L3,FC,ResNet18")
    ap.add_argument("--cold", action="store_true", help="no wake-up call before each timed call")
    a = ap.parse_args()
    print(f"one sample, {a.reps} rounds, {'cold' if a.cold else 'warm'} pool, medians\n")
    print("| item | 1 thread ms | 2 threads ms | 2 threads / 1 (median of rounds) |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for name, net in networks(tmp, a.only.split(",")):
            one, two = time_parts(net, a.reps, not a.cold, Path(tmp))
            print(f"| {name} | {one.median_ms:.3f} | {two.median_ms:.3f} | {1 / two.ratio_to_first:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
