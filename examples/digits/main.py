"""The main job, end to end: compile a trained digits network to C, run it on the test set.

    python examples/digits/main.py                 # all three: float, bwn, xnor
    python examples/digits/main.py xnor --target host

For each network: load net.yaml + the committed .npz, compile for this machine
(xnorgen.build), run the held-out digits through the C library and through the
golden model (xnorgen.reference), and print both accuracies, their agreement
and, if the simulator is present, the paper-model speedup.
Inputs are normalized exactly as in training: (x - mean) / std of the training split.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import xnorgen
from xnorgen.training.data import load_dataset

HERE = Path(__file__).resolve().parent


def evaluate(mode, target="host"):
    net = xnorgen.load(HERE / f"digits_{mode}.yaml")
    data = load_dataset("digits", net.input_shape)
    x = data.x_test.astype(np.float32)
    t0 = time.perf_counter()
    lib = xnorgen.build(net, target=target)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    c_out = lib(x).reshape(len(x), -1)
    t_run = time.perf_counter() - t0
    ref = xnorgen.reference(net, x).reshape(len(x), -1)
    c_pred, r_pred = c_out.argmax(axis=1), ref.argmax(axis=1)
    res = {"net": net.name, "samples": len(x), "c_acc": float((c_pred == data.y_test).mean()),
           "ref_acc": float((r_pred == data.y_test).mean()), "agree": float((c_pred == r_pred).mean()),
           "build_s": t_build, "run_us": 1e6 * t_run / len(x)}
    if hasattr(xnorgen, "simulate"):
        try:
            rep = xnorgen.simulate(net, target=target, report="speedup")
            res["speedup"] = rep.get("total", {}).get("speedup") if isinstance(rep, dict) else None
        except Exception as e:          # the simulator is another module's work in progress
            res["speedup_error"] = str(e)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("modes", nargs="*", default=["float", "bwn", "xnor"], help="float, bwn and/or xnor")
    ap.add_argument("--target", default="host")
    args = ap.parse_args()
    for m in args.modes:
        if m not in ("float", "bwn", "xnor"):
            ap.error(f"unknown network {m!r} (float, bwn or xnor)")
    for mode in args.modes:
        r = evaluate(mode, args.target)
        line = (f"{r['net']}: C library {100 * r['c_acc']:.2f}%, golden model {100 * r['ref_acc']:.2f}% "
                f"on {r['samples']} test digits; predictions agree on {100 * r['agree']:.2f}%; "
                f"compile+load {r['build_s']:.1f}s, {r['run_us']:.0f} us/sample (incl. Python call)")
        if r.get("speedup") is not None:
            line += f"; paper-model speedup {r['speedup']:.2f}x"
        elif "speedup_error" in r:
            line += f"; simulator unavailable ({r['speedup_error']})"
        print(line)


if __name__ == "__main__":
    main()
