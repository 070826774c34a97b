"""Benchmark: generated XNOR code vs onnxruntime fp32 vs numpy float, in one process, interleaved.

    OMP_NUM_THREADS=1 python benchmarks/bench.py [--target host] [--reps 30] [--only L1,FC] [--warm]

Layers of the fast-kernels issue (batch 1, one thread): L1 c=256 14x14 3x3 256 filters pad 1;
L2 c=64 56x56 3x3 64 filters; L3 c=512 7x7 3x3 512 filters; FC dense 4096->4096; and a
ResNet-18-shaped XNOR network (examples/resnet18.yaml: first and last layers float) against
its float twin in onnxruntime. The xnorgen timings include binarizing and packing the float
input and computing K, i.e. the whole layer as the network runs it.
Prints a markdown table: median ms, GMAC/s, binary MACs per cycle at the measured clock,
and ratios vs onnxruntime. onnxruntime is optional (pip install onnxruntime onnx).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

import xnorgen  # noqa: E402
from netgen import write_net  # noqa: E402
from clock import measure_clock_ghz  # noqa: E402

LAYERS = {
    "L1": dict(c=256, h=14, w=14, f=256, k=3, pad=1),
    "L2": dict(c=64, h=56, w=56, f=64, k=3, pad=1),
    "L3": dict(c=512, h=7, w=7, f=512, k=3, pad=1),
}


def xnor_conv_net(tmp, name, c, h, w, f, k, pad):
    layer = {"name": "conv", "type": "conv2d", "mode": "xnor", "filters": f, "kernel": k, "padding": pad}
    return xnorgen.load(write_net(tmp, name, (c, h, w), [layer], np.random.default_rng(1)))


def xnor_dense_net(tmp, n_in, n_out):
    layer = {"name": "fc", "type": "dense", "mode": "xnor", "units": n_out}
    return xnorgen.load(write_net(tmp, "fc", (n_in,), [layer], np.random.default_rng(2)))


def resnet18_net(tmp):
    """examples/resnet18.yaml with seeded random weights (layer_times' loader, the one benchmarks use)."""
    from layer_times import load_with_weights
    return load_with_weights(HERE.parent / "examples" / "resnet18.yaml")


def numpy_conv(x, wt, pad):
    from numpy.lib.stride_tricks import sliding_window_view
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(xp, wt.shape[2:], axis=(1, 2))          # [C, H, W, k, k]
    cols = win.transpose(1, 2, 0, 3, 4).reshape(-1, wt.shape[1] * wt.shape[2] * wt.shape[3])
    return wt.reshape(wt.shape[0], -1) @ cols.T


def interleaved_times(fns: dict, reps: int) -> dict:
    """After one warm-up call each, every candidate once per round, `reps` rounds:
    {candidate: array of its seconds per round}. Round r starts at candidate r mod n, so each
    candidate follows each other one equally often: with a fixed order the one after
    onnxruntime always found the caches emptied by it, and the next ones found them refilled
    (FC batch 16: the plain call measured 1.49x slower than `bind` that way, 1.09x alone)."""
    for fn in fns.values():
        fn()                                   # warm-up
    times = {k: [] for k in fns}
    keys = list(fns)
    for r in range(reps):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            t0 = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - t0)
    return {k: np.array(v) for k, v in times.items()}


def interleaved_medians(fns: dict, reps: int) -> dict:
    """Median seconds per candidate over interleaved rounds, and (key "round ratio") the median
    over rounds of onnxruntime's time / xnorgen's in that round: both measured within
    milliseconds, so the VM's drift between minutes cancels."""
    times = interleaved_times(fns, reps)
    med = {k: float(np.median(v)) for k, v in times.items()}
    if "onnxruntime" in times:
        med["round ratio"] = float(np.median(times["onnxruntime"] / times["xnorgen"]))
    return med


def warm_medians(fns: dict, reps: int) -> dict:
    """Each candidate back to back (its own data stays in cache), one candidate after another,
    repeated three times so machine noise hits all of them; median seconds per candidate."""
    times = {k: [] for k in fns}
    for _ in range(3):
        for k, fn in fns.items():
            fn()
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def candidates(net, macs_shape, target):
    """{label: zero-arg callable} for xnorgen, onnxruntime and numpy on one benchmark item."""
    kind, spec = macs_shape
    lib = xnorgen.build(net, target)
    x = np.random.default_rng(0).standard_normal(net.input_shape).astype(np.float32)
    out = np.empty(net.output_shape, np.float32)
    fns = {"xnorgen": lib.bind(x, out)}
    try:
        import onnx_models
        if kind == "conv":
            sess = onnx_models.conv_session(spec["c"], spec["h"], spec["w"], spec["f"], spec["k"], spec["pad"])
        elif kind == "dense":
            sess = onnx_models.dense_session(*spec)
        else:
            sess = onnx_models.network_session(net)
        feed = {sess.get_inputs()[0].name: x.reshape(1, *x.shape) if kind != "dense" else x.reshape(1, -1)}
        fns["onnxruntime"] = lambda: sess.run(None, feed)
    except ImportError:
        pass
    if kind == "conv":
        wt = np.random.default_rng(0).standard_normal((spec["f"], spec["c"], spec["k"], spec["k"])).astype(np.float32)
        fns["numpy"] = lambda: numpy_conv(x, wt, spec["pad"])
    elif kind == "dense":
        wt = np.random.default_rng(0).standard_normal((spec[1], spec[0])).astype(np.float32)
        fns["numpy"] = lambda: wt @ x
    return lib, fns


def macs_of(net):
    """Multiply-accumulates of conv/dense layers (binary ones count as binary MACs)."""
    from math import prod
    total = binary = 0
    for layer in net.layers:
        if layer.type == "conv2d":
            m = prod(net.shapes[layer.name]) * net.shapes[layer.inputs[0]][0] * prod(layer.kernel)
        elif layer.type == "dense":
            m = layer.units * prod(net.shapes[layer.inputs[0]])
        else:
            continue
        total += m
        binary += m if layer.mode == "xnor" else 0
    return total, binary


def main(argv=None):
    ap = argparse.ArgumentParser(description="xnorgen layer benchmarks")
    ap.add_argument("--target", default="host")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--only", default="L1,L2,L3,FC,ResNet18")
    ap.add_argument("--markdown", default=None, help="also write the table (with the setup) to this file")
    ap.add_argument("--warm", action="store_true",
                    help="run each candidate back to back (warm caches) instead of interleaved rounds")
    args = ap.parse_args(argv)
    ghz = measure_clock_ghz()
    from xnorgen.target import resolve
    t = resolve(args.target)
    mode = "back-to-back (warm) runs" if args.warm else "interleaved rounds"
    print(f"target {t.name}; measured clock {ghz:.2f} GHz; {args.reps} {mode}, medians\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        items = []
        for name, spec in LAYERS.items():
            items.append((name, lambda s=spec, n=name: xnor_conv_net(tmp, n, **s), ("conv", spec)))
        items.append(("FC", lambda: xnor_dense_net(tmp, 4096, 4096), ("dense", (4096, 4096))))
        items.append(("ResNet18", lambda: resnet18_net(tmp), ("net", None)))
        for name, make, shape in items:
            if name not in args.only.split(","):
                continue
            net = make()
            lib, fns = candidates(net, shape, t.name)
            measure = warm_medians if args.warm else interleaved_medians
            med = measure(fns, args.reps if name != "ResNet18" else max(5, args.reps // 3))
            total, binary = macs_of(net)
            sim = None
            if hasattr(xnorgen, "simulate"):
                try:
                    rep = xnorgen.simulate(net, target=t.name, report="cycles")
                    sim = rep.get("total", {}).get("cycles") if isinstance(rep, dict) else None
                except Exception:          # the simulator is optional here
                    sim = None
            rows.append((name, med, total, binary, sim))
            print_row(name, med, total, binary, ghz, sim)
    if args.markdown:
        write_markdown(args.markdown, rows, ghz, t, args.reps, mode)
    return rows


def write_markdown(path, rows, ghz, target, reps, mode="interleaved rounds"):
    """The table as measured, with what it was measured on."""
    import platform
    try:
        import onnxruntime
        ort = onnxruntime.__version__
    except ImportError:
        ort = "not installed"
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    flag = " --warm" if mode.startswith("back") else ""
    lines = [f"Measured by `python benchmarks/bench.py --reps {reps}{flag}` on {cpu} ({platform.machine()}), "
             f"target {target.name}, clock measured at {ghz:.2f} GHz, onnxruntime {ort}, numpy {np.__version__}; "
             f"one thread, batch 1, medians of {mode}.", "",
             HEADER, RULE]
    for name, med, total, binary, sim in rows:
        lines.append("| " + " | ".join(row_cells(name, med, total, binary, ghz, sim)) + " |")
    Path(path).write_text("\n".join(lines) + "\n")


HEADER = ("| item | xnorgen ms | onnxruntime fp32 ms | numpy fp32 ms | speedup vs ORT | per-round speedup | "
          "GMAC/s | binary MACs/cycle | predicted cycles | measured cycles |")
RULE = "| --- " * 10 + "|"


def row_cells(name, med, total, binary, ghz, sim):
    """Speedup: the ratio of the medians; per-round: the median of each round's ratio (interleaved only)."""
    xg = med["xnorgen"]
    ort = med.get("onnxruntime")
    npy = med.get("numpy")
    rr = med.get("round ratio")
    cycles = xg * ghz * 1e9
    return [name, f"{xg * 1e3:.3f}", f"{ort * 1e3:.3f}" if ort else "-", f"{npy * 1e3:.3f}" if npy else "-",
            f"{ort / xg:.1f}x" if ort else "-", f"{rr:.1f}x" if rr else "-", f"{total / xg / 1e9:.1f}",
            f"{binary / cycles:.0f}", f"{sim:,.0f}" if sim else "-", f"{cycles:,.0f}"]


def print_row(name, med, total, binary, ghz, sim):
    cols = row_cells(name, med, total, binary, ghz, sim)
    if not hasattr(print_row, "header"):
        print(HEADER)
        print(RULE)
        print_row.header = True
    print("| " + " | ".join(cols) + " |", flush=True)


if __name__ == "__main__":
    main()
