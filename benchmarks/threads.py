"""Batch throughput over threads, and the plain call against `bind` (issue 19, items 1 and 4).

    python benchmarks/threads.py [--batch 16] [--rounds 15] [--only L1,L3,FC,cifar_xnor]

For each network: one batch through `xnorgen.build(net, threads=1)`, `threads=2`, and the same
batch through `bind` one sample at a time (no Python per call beyond the cffi call), in
interleaved rounds; prints medians and, per round, the ratios (threads=1 / threads=2; plain
call / bind). The bits of every variant are checked equal first. One sample still runs on one
thread (no intra-op parallelism yet), so the 2-thread figure is the batch's, not a latency.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import xnorgen  # noqa: E402
from bench import LAYERS, interleaved_times, xnor_conv_net, xnor_dense_net  # noqa: E402


def networks(tmp, only):
    for name in only:
        if name in LAYERS:
            yield name, xnor_conv_net(tmp, name, **LAYERS[name])
        elif name == "FC":
            yield name, xnor_dense_net(tmp, 4096, 4096)
        else:
            yield name, xnorgen.load(HERE.parent / "examples" / f"{name}.yaml")


def ort_twins(name):
    """onnxruntime's fp32 conv of the same shape at 1 and 2 intra-op threads (what this machine's
    second core gives a mature engine right now), or {} without onnxruntime or for other items."""
    if name not in LAYERS:
        return {}
    try:
        from onnx_models import conv_session
    except ImportError:
        return {}
    spec = LAYERS[name]
    x = np.random.default_rng(0).standard_normal((1, spec["c"], spec["h"], spec["w"])).astype(np.float32)
    out = {}
    for t in (1, 2):
        sess = conv_session(spec["c"], spec["h"], spec["w"], spec["f"], spec["k"], spec["pad"], threads=t)
        out[f"ort threads={t}"] = (lambda s: lambda: s.run(None, {"x": x}))(sess)
    return out


def measure(net, batch: int, rounds: int, extra=None) -> dict:
    one, two = xnorgen.build(net, threads=1), xnorgen.build(net, threads=2)
    x = np.random.default_rng(0).uniform(-1, 1, (batch, *one.input_shape)).astype(np.float32)
    out = np.empty((batch, *one.output_shape), dtype=np.float32)
    arena = one.new_arena()
    calls = [one.bind(x[i], out[i], arena) for i in range(batch)]

    def bound():
        for c in calls:
            c()
    want = one(x)
    bound()
    assert np.array_equal(two(x), want) and np.array_equal(out, want), "threads changed the bits"
    fns = {"threads=1": lambda: one(x), "threads=2": lambda: two(x), "bind": bound, **(extra or {})}
    t = interleaved_times(fns, rounds)
    r = {"ms": {k: float(np.median(v)) * 1e3 for k, v in t.items()},
         "speedup": float(np.median(t["threads=1"] / t["threads=2"])),
         "plain/bind": float(np.median(t["threads=1"] / t["bind"]))}
    if "ort threads=2" in t:
        r["ort speedup"] = float(np.median(t["ort threads=1"] / t["ort threads=2"]))
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--only", default="L1,L3,FC,cifar_xnor")
    a = ap.parse_args()
    print(f"batch {a.batch}, {a.rounds} interleaved rounds, medians\n")
    print("| network | threads=1 ms | threads=2 ms | bind ms | 2 threads / 1 | plain call / bind "
          "| onnxruntime 2 threads / 1 (one sample, same rounds) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for name, net in networks(tmp, a.only.split(",")):
            r = measure(net, a.batch, a.rounds, ort_twins(name))
            ms = r["ms"]
            ort = f"{r['ort speedup']:.2f}x" if "ort speedup" in r else "-"
            print(f"| {name} | {ms['threads=1']:.2f} | {ms['threads=2']:.2f} | {ms['bind']:.2f} | "
                  f"{r['speedup']:.2f}x | {r['plain/bind']:.3f} | {ort} |", flush=True)


if __name__ == "__main__":
    main()
