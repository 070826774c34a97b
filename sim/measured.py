"""Predicted against measured instructions, kernel by kernel (`xnorgen measure`).

Measured: firmware targets on their emulated part (xnorgen.toolchain.firmware.measure: qemu
-icount and SysTick), armv8 under qemu-aarch64 from its block log (sim.qemu_count), hosted x86
targets with callgrind (sim.callgrind.measure). Predicted: the simulator's count for the same
kernel (machine.run_plan).
"""
from __future__ import annotations

import tempfile

from xnorgen.errors import XnorgenError
from xnorgen.plan.core import plan_network

from .machine import run_plan


def measured_counts(net, target) -> dict[str, int]:
    """{kernel ident: instructions of one inference} on target, by the way target can be counted."""
    from xnorgen.target import executes_here, runs_here
    from xnorgen.toolchain import firmware
    from . import callgrind, qemu_count
    with tempfile.TemporaryDirectory(prefix="xnorgen-measure-") as d:
        if firmware.can_run(target):
            counts = firmware.measure(net, target, d)
            counts.pop("infer", None)
            return counts
        if runs_here(target) and callgrind.available():
            if target.popcount == "avx512":        # valgrind dies on the first AVX-512 instruction (SIGILL)
                raise XnorgenError(f"target {target.name}", "callgrind cannot run AVX-512 code (valgrind has no "
                                   "AVX-512 support); count the same network with -t x86-64-avx2 or -t x86-64")
            return callgrind.measure(net, target, d)
        if executes_here(target) and target.run and target.run[0].startswith("qemu-"):
            return qemu_count.measure(net, target, d)
    raise XnorgenError(f"target {target.name}", "no instruction counter for it on this machine "
                       "(cortex-m4: qemu-system-arm and arm-none-eabi-gcc; armv8: qemu-aarch64 and "
                       "aarch64-linux-gnu-gcc; x86 hosts: valgrind)")


def compare(net, target) -> dict:
    """The measure report: per kernel predicted and measured instructions and their ratio."""
    counts = measured_counts(net, target)
    predicted = {r.ident: r for r in run_plan(plan_network(net, target)).layers}
    rows = [{"kernel": k, "type": predicted[k].type if k in predicted else "?", "measured": v,
             "predicted": predicted[k].instructions if k in predicted else None} for k, v in counts.items()]
    for r in rows:
        r["ratio"] = r["predicted"] / r["measured"] if r["predicted"] is not None and r["measured"] else None
    tot_m = sum(r["measured"] for r in rows)
    tot_p = sum(r["predicted"] or 0 for r in rows)
    return {"report": "measured", "network": net.name, "target": target.name, "layers": rows,
            "total": {"measured": tot_m, "predicted": tot_p, "ratio": tot_p / tot_m if tot_m else None}}


def format_measured(rep: dict) -> str:
    lines = [f"{rep['network']} on {rep['target']}: instructions per inference, predicted / measured",
             "", "| kernel | type | measured | predicted | predicted/measured |", "| --- | --- | --- | --- | --- |"]
    for r in rep["layers"]:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        lines.append(f"| {r['kernel']} | {r['type']} | {r['measured']:,} | {r['predicted'] or 0:,} | {ratio} |")
    t = rep["total"]
    lines.append(f"| total | | {t['measured']:,} | {t['predicted']:,} | {t['ratio']:.2f} |")
    return "\n".join(lines)
