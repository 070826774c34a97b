"""Per-kernel times of a compiled network: a C harness times each call of the generated driver.

    python benchmarks/layer_times.py NET.yaml [--target host] [--reps 200] [--cold-mib 0 [--cold-read]]

The network's driver (<name>_infer) is a straight list of kernel calls; this script compiles the
generated C with a harness that makes the same calls in the same order on the same arena and
times each one (median over reps, clock_gettime), so the table shows where a network's time
goes without Python in the way. --cold-mib N writes an N MiB buffer before every round, which
evicts the input, output and arena from the inner caches as an interleaved benchmark does
(--cold-read reads it instead, which leaves the caches clean: no dirty lines to write back).
A description without weights gets seeded random ones (shapes are what matter for time).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import xnorgen
from xnorgen.target import resolve

def driver_calls(c_source: str, name: str) -> list[str]:
    """The kernel call statements of <name>_infer, in order."""
    body = c_source.split(f"int {name}_infer(", 1)[1]
    body = body.split("(void)a;", 1)[1].split("return 0;", 1)[0]
    return [line.strip() for line in body.splitlines() if line.strip()]


def layer_times(net, target, reps: int = 200, cold_mib: int = 0,
                cold_read: bool = False) -> list[tuple[str, float]]:
    """[(kernel function, median ms)] for each call of the driver, in call order."""
    t = resolve(target) if isinstance(target, str) else target
    from xnorgen.api import compile_network
    from xnorgen.toolchain.harness import parse_timing, render_timing
    from xnorgen.toolchain.output import write_directory
    _, files = compile_network(net, t)
    name = net.name
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_directory(files, d / "gen")
        src = (d / "gen" / f"{name}.c").read_text()
        calls = driver_calls(src, name)
        # each kernel's function; on hosted targets the driver calls its step, <kernel>_step
        fns = [re.sub(r"_step$", "", re.match(r"(\w+)\(", c).group(1)) for c in calls]
        sizes = json.loads(files["manifest.json"])
        (d / "harness.c").write_text(render_timing(
            list(zip(fns, (c.rstrip(";") for c in calls))), sizes["input_size"], sizes["output_size"],
            sizes["arena_size"], reps, cold_mib=cold_mib, cold_read=cold_read, includes=[f"{name}.c"]))
        exe = d / "harness"
        # the harness includes the network's C: built with the target's own flags, its -std too
        # (a GNU dialect would contract a * b + c into FMAs the library does not have)
        subprocess.run([t.cc, *t.cflags, "-I", str(d / "gen"), str(d / "harness.c"),
                        str(d / "gen" / f"{name}_weights.c"), "-lm", "-o", str(exe)], check=True)
        out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return [(row.name, row.median_ms) for row in parse_timing(out)]


def load_with_weights(path: Path):
    """The network, with seeded random weights if its description names none. (ab.py imports this
    module under older revisions too: keep its imports at the top to what they all have.)"""
    net = xnorgen.load(path, weights=False)
    if net.weights_path is not None:
        return xnorgen.load(path)
    from xnorgen.frontend.weights import random_weights
    weights = Path(tempfile.mkdtemp()) / f"{path.stem}.npz"
    np.savez(weights, **random_weights(net, np.random.default_rng(3), weight_scale=0.1))
    return xnorgen.load(path, weights_file=weights)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("net", type=Path)
    ap.add_argument("--target", default="host")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--cold-mib", type=int, default=0, help="MiB written before every round")
    ap.add_argument("--cold-read", action="store_true", help="read the --cold-mib buffer instead of writing it")
    args = ap.parse_args(argv)
    net = load_with_weights(args.net)
    rows = layer_times(net, args.target, args.reps, args.cold_mib, args.cold_read)
    total = sum(ms for _, ms in rows)
    verb = "read" if args.cold_read else "written"
    print(f"{net.name} on {resolve(args.target).name}: medians of {args.reps} rounds"
          f"{f', {args.cold_mib} MiB {verb} between rounds' if args.cold_mib else ''}\n")
    print("| kernel | ms | share |\n| --- | --- | --- |")
    for fn, ms in rows:
        print(f"| {fn} | {ms:.4f} | {100 * ms / total:.1f}% |")
    print(f"| total | {total:.4f} | 100% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
