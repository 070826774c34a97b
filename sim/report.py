"""simulate(): the three reports as JSON-able dicts, and their plain-text tables."""
from __future__ import annotations

import numpy as np

from xnorgen.errors import XnorgenError
from xnorgen.reference import split_batch

from .machine import run_plan
from .memory import memory_report
from .ops import cost_of, word_lanes
from .paper import network_model, sweep_channels, sweep_kernel

REPORTS = ("speedup", "cycles", "memory")
SWEEPS = ("channels", "kernel")


def plan_for(net, target):
    """Plan a network (weights not needed) for a target name or Target."""
    from xnorgen.plan.core import plan_network
    from xnorgen.target import resolve
    t = resolve(target) if isinstance(target, str) else target
    return plan_network(net, t)


def cycles_report(plan, x=None) -> dict:
    """Counts by class, instructions, cycles and latency per layer and in total (functional if x)."""
    run = run_plan(plan, x)
    t = plan.target
    per_us = t.clock_ghz * 1e3

    def row(name, ident, typ, mode, counts, cyc, instr, busiest=None):
        return {"layer": name, "c_name": ident, "type": typ, "mode": mode, "ops": dict(sorted(counts.items())),
                "instructions": instr, "cycles": round(cyc), "microseconds": cyc / per_us, "bound": busiest}
    layers = [row(r.name, r.ident, r.type, r.mode, r.counts, r.cycles, r.instructions, r.bound) for r in run.layers]
    total = row(None, None, None, None, run.total_counts, run.total_cycles, sum(r.instructions for r in run.layers))
    for k in ("layer", "c_name", "type", "mode", "bound"):
        total.pop(k)
    rep = {"report": "cycles", "network": plan.net.name, "target": t.name, "clock_ghz": t.clock_ghz,
           "model": "ports" if t.ports else "sum",
           "costs": {k: cost_of(k, t.costs, word_lanes(t)) for k in sorted(run.total_counts)}, "functional": x is not None,
           "layers": layers, "total": total}
    if x is not None:
        rep["output"] = run.output.tolist()
    return rep


def simulate(net, target="host", report="cycles", x=None, sweep=None) -> dict:
    """One report on a network (a Network, or a path to net.yaml; weights optional).

    report: speedup (the paper's model; with sweep=channels|kernel, Figure 4(b)/(c) instead),
    cycles (the target model; functional when x is given and the net has weights), memory.
    x, when given, must be one sample of the input shape, finite real numbers (checked by
    xnorgen.reference.split_batch, an XnorgenError otherwise), whichever the report.
    """
    if report not in REPORTS:
        raise XnorgenError("simulate", f"unknown report {report!r} (one of {', '.join(REPORTS)})")
    if sweep is not None:
        if sweep not in SWEEPS:
            raise XnorgenError("simulate", f"unknown sweep {sweep!r} (one of {', '.join(SWEEPS)})")
        pts = sweep_channels() if sweep == "channels" else sweep_kernel()
        return {"report": "speedup-sweep", "sweep": sweep, "figure": "4(b)" if sweep == "channels" else "4(c)",
                "points": pts}
    if not hasattr(net, "layers"):
        from xnorgen.api import load
        net = load(net, weights=x is not None)
    if x is not None:
        x = split_batch(net, x, batch=False)[0][0]
    plan = plan_for(net, target)
    if report == "speedup":
        return network_model(plan)
    if report == "memory":
        return memory_report(plan)
    if x is not None and any(not lay.params for lay in net.layers if lay.type in ("conv2d", "dense", "batchnorm")):
        raise XnorgenError(f"{net.name}: simulate", "a functional run needs the weights (load(path) with weights)")
    return cycles_report(plan, x)


def _table(headers, rows) -> str:
    """Right-aligned plain-text table."""
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.2f}" if abs(v) < 1e6 else f"{v:.4g}"
    return "-" if v is None else str(v)


def format_table(rep: dict) -> str:
    """The report as a table for people (JSON is the machine format)."""
    kind = rep["report"]
    if kind == "speedup-sweep":
        key = "c" if rep["sweep"] == "channels" else "kernel"
        return f"Figure {rep['figure']}\n" + _table([key, "N_W", "speedup"],
                                                     [[p[key], p["N_W"], p["speedup"]] for p in rep["points"]])
    if kind == "speedup":
        t = rep["total"]
        rows = [[m["layer"], m["mode"], m["c"], m["N_W"], m["N_I"], m["filters"], m["float_clocks"],
                 m["binary_clocks"], m["speedup"]] for m in rep["layers"]]
        rows.append(["total", "", "", "", "", "", t["float_clocks"], t["binary_clocks"], t["speedup"]])
        return _table(["layer", "mode", "c", "N_W", "N_I", "filters", "float clk", "binary clk", "speedup"], rows) + \
            (f"\nbinary layers only: {t['binary_layers_speedup']:.2f}x" if t["binary_layers_speedup"] else "")
    if kind == "memory":
        t = rep["total"]
        rows = [[m["layer"], m["mode"], m["params"], m["float64"], m["float32"], m["packed"], m["all_binary"]]
                for m in rep["layers"]]
        rows.append(["total", "", t["params"], t["float64"], t["float32"], t["packed"], t["all_binary"]])
        return _table(["layer", "mode", "params", "float64 B", "float32 B", "packed B", "all-binary B"], rows) + \
            f"\nfloat64/packed {t['ratio_float64_packed']:.1f}x, float32/packed {t['ratio_float32_packed']:.1f}x, " \
            f"float64/all-binary {t['ratio_float64_all_binary']:.1f}x; arena {rep['arena']['bytes']} B " \
            f"(without reuse {rep['arena']['without_reuse']} B)"
    t = rep["total"]
    rows = [[m["layer"], m["mode"] or m["type"], m["instructions"], m["cycles"], m["microseconds"], m["bound"]]
            for m in rep["layers"]]
    rows.append(["total", "", t["instructions"], t["cycles"], t["microseconds"], None])
    run = "functional run on the input" if rep["functional"] else "counts only"
    text = f"{rep['network']} on {rep['target']} at {rep['clock_ghz']} GHz ({rep['model']} model, {run})\n" + \
        _table(["layer", "kind", "instructions", "cycles", "us", "bound by"], rows)
    return (text + "\n" + _output_summary(rep["output"])) if rep["functional"] else text


OUTPUT_VALUES_SHOWN = 10


def _output_summary(output) -> str:
    """What a functional run adds to the cycles table: the network's output for the input
    (its shape, argmax, range and first values; the JSON has every value)."""
    y = np.asarray(output, dtype=np.float64)
    flat = y.ravel()
    shown = " ".join(f"{v:.6g}" for v in flat[:OUTPUT_VALUES_SHOWN])
    more = f" ... ({flat.size - OUTPUT_VALUES_SHOWN} more)" if flat.size > OUTPUT_VALUES_SHOWN else ""
    return (f"output {list(y.shape)}: argmax {int(np.argmax(flat))}, min {flat.min():.6g}, max {flat.max():.6g}\n"
            f"  {shown}{more}")


def plot_sweeps(path) -> None:
    """Figure 4(b) and 4(c) side by side as a PNG (needs the optional matplotlib extra)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise XnorgenError("--plot", "matplotlib is not installed (pip install 'xnorgen[plot]')") from None
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    ch, ks = sweep_channels(), sweep_kernel()
    a.plot([p["c"] for p in ch], [p["speedup"] for p in ch], "o-")
    a.set(xscale="log", xlabel="number of channels (N_W = 3x3)", ylabel="speedup", title="Figure 4(b)")
    b.plot([p["kernel"] for p in ks], [p["speedup"] for p in ks], "o-")
    b.set(xlabel="filter size k (N_W = k x k, c = 256)", ylabel="speedup", title="Figure 4(c)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
