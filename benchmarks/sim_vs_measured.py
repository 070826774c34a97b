"""The simulator's predicted cycles next to measured ones, kernel by kernel.

    python benchmarks/sim_vs_measured.py NET.yaml [NET.yaml ...] [--target host] [--reps 200]
                                         [--markdown F]

Each network's kernels are timed by benchmarks/layer_times.py (a C harness, warm, medians), the
clock by benchmarks/clock.py, and predicted by `xnorgen.simulate(net, report="cycles")` for the
same target. Prints one row per kernel (predicted / measured) and, per network and over all
kernels, the geometric mean of that ratio and the share of kernels predicted within ±25 %.
Kernels under 2 µs are listed but not scored (the harness's timer resolution).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import xnorgen
from xnorgen.target import resolve

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clock import measure_clock_ghz  # noqa: E402
from layer_times import layer_times, load_with_weights  # noqa: E402

MIN_MS = 0.002


def predicted_by_function(net, target) -> dict[str, float]:
    """{C function name: predicted cycles} for every kernel the driver calls."""
    rep = xnorgen.simulate(net, target=target, report="cycles")
    out = {}
    for row in rep["layers"]:
        prefix = net.name + ("_" if row["type"] == "binarize" else "_layer_")
        out[prefix + row["c_name"]] = row["cycles"]
    return out


def compare(net, target, ghz: float, reps: int) -> list[tuple[str, float, float]]:
    """[(kernel, measured cycles, predicted cycles)] in call order."""
    pred = predicted_by_function(net, target)
    return [(fn, ms * 1e-3 * ghz * 1e9, pred[fn]) for fn, ms in layer_times(net, target, reps)]


def summary(rows) -> str:
    scored = [(m, p) for _, m, p in rows if m > 0 and p > 0]
    if not scored:
        return "no kernel long enough to score"
    logs = [math.log(p / m) for m, p in scored]
    within = sum(abs(p / m - 1) <= 0.25 for m, p in scored)
    return (f"{len(scored)} kernels: geometric mean predicted/measured {math.exp(sum(logs) / len(logs)):.2f}, "
            f"{within} of {len(scored)} within ±25 %, worst {math.exp(max(logs, key=abs)):.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("nets", type=Path, nargs="+")
    ap.add_argument("--target", default="host")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--markdown", default=None, help="also write the tables to this file")
    args = ap.parse_args(argv)
    target = resolve(args.target)
    ghz = measure_clock_ghz()
    lines = [f"Target {target.name}, clock measured at {ghz:.2f} GHz; warm medians of {args.reps} rounds "
             f"(benchmarks/sim_vs_measured.py)\n"]
    everything = []
    for path in args.nets:
        net = load_with_weights(path)
        rows = compare(net, target, ghz, args.reps)
        scored = [(fn, m, p) for fn, m, p in rows if m >= MIN_MS * 1e-3 * ghz * 1e9]
        everything += scored
        lines += [f"### {net.name}\n", "| kernel | measured cycles | predicted cycles | predicted / measured |",
                  "| --- | ---: | ---: | ---: |"]
        lines += [f"| {fn} | {m:,.0f} | {p:,.0f} | {p / m:.2f} |" for fn, m, p in rows]
        lines += ["", summary(scored), ""]
    if len(args.nets) > 1:
        lines += ["All networks: " + summary(everything)]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
