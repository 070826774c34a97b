"""The simulator's predicted cycles next to llvm-mca's for the code that ran, kernel by kernel.

    python benchmarks/mca.py NET.yaml [NET.yaml ...] [--target cortex-m4] [--target armv8]

No ARM hardware here: each network runs once under the target's emulator with qemu's block log on,
and every executed basic block goes through llvm-mca for the target's core (Cortex-M4; Cortex-A72
for armv8), weighted by its executions (sim/mca.py says what that model leaves out). Prints per
kernel the simulator's instructions, its cycles, llvm-mca's cycles and their ratio, then the
totals, as markdown.
"""
from __future__ import annotations

import argparse
import tempfile

import xnorgen
from xnorgen.plan.core import plan_network
from xnorgen.sim.machine import run_plan
from xnorgen.sim.mca import available, inference_cycles
from xnorgen.target import resolve


def table(net, target) -> str:
    with tempfile.TemporaryDirectory(prefix="xnorgen-mca-") as d:
        mca = inference_cycles(net, target, d)
    pred = {r.ident: r for r in run_plan(plan_network(net, target)).layers}
    rows = [f"{net.name} on {target.name}: cycles per inference, simulator / llvm-mca -mcpu={target.name if target.name != 'armv8' else 'cortex-a72'}",
            "", "| kernel | predicted instructions | predicted cycles | llvm-mca cycles | predicted/llvm-mca |",
            "| --- | --- | --- | --- | --- |"]
    tp = tm = 0.0
    for k, m in mca.items():
        if k not in pred:
            continue
        p = pred[k]
        tp, tm = tp + p.cycles, tm + m
        rows.append(f"| {k} | {p.instructions:,} | {p.cycles:,.0f} | {m:,.0f} | {p.cycles / m:.2f} |")
    rows.append(f"| total | | {tp:,.0f} | {tm:,.0f} | {tp / tm:.2f} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nets", nargs="+")
    ap.add_argument("--target", action="append", default=None)
    a = ap.parse_args()
    for path in a.nets:
        net = xnorgen.load(path)
        for name in a.target or ["cortex-m4", "armv8"]:
            t = resolve(name)
            if not available(t):
                print(f"{name}: llvm-mca has no model for it here (apt-get install llvm)")
                continue
            print(table(net, t), end="\n\n", flush=True)


if __name__ == "__main__":
    main()
