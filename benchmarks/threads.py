"""Threads: one sample's latency, and a batch's throughput (issue 19, items 1, 4 and 5).

    python benchmarks/threads.py --latency [--rounds 30] [--burst 1] [--only L1,L2,L3,FC,ResNet18]
    python benchmarks/threads.py [--batch 16] [--rounds 15] [--only L1,L3,FC,cifar_xnor]

--latency: one sample through `lib(x)` of `xnorgen.build(net, threads=1)` and `threads=2` (the
second runs <name>_infer_parallel on the library's xg_pool), and onnxruntime fp32's twin of the
same shape at 1 and 2 intra-op threads, in interleaved rounds. Each round runs every candidate
`--burst` times back to back and counts the mean per call (burst 1: workers woken from sleep at
each call, as after any pause; burst 5: mostly awake from the call before, as in a stream).
Prints medians and the per-round ratios: xnorgen 1 thread / 2 threads, onnxruntime the same,
and onnxruntime / xnorgen at 2 threads each. The bits of both xnorgen variants are checked equal.

Without --latency: one batch through threads=1, threads=2, and the same batch through `bind`
one sample at a time (no Python per call beyond the cffi call), in interleaved rounds; prints
medians and the per-round ratios (threads=1 / threads=2; plain call / bind).
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
from bench import LAYERS, interleaved_times, resnet18_net, xnor_conv_net, xnor_dense_net  # noqa: E402


def networks(tmp, only):
    for name in only:
        if name in LAYERS:
            yield name, xnor_conv_net(tmp, name, **LAYERS[name])
        elif name == "FC":
            yield name, xnor_dense_net(tmp, 4096, 4096)
        elif name == "ResNet18":
            yield name, resnet18_net(tmp)
        else:
            yield name, xnorgen.load(HERE.parent / "examples" / f"{name}.yaml")


def ort_session(name, net, threads):
    """onnxruntime's fp32 twin of a benchmark item at `threads` intra-op threads, and its input;
    None without onnxruntime."""
    try:
        from onnx_models import conv_session, dense_session, network_session
    except ImportError:
        return None
    if name in LAYERS:
        spec = LAYERS[name]
        sess = conv_session(spec["c"], spec["h"], spec["w"], spec["f"], spec["k"], spec["pad"], threads=threads)
        feed = "x"
    elif name == "FC":
        sess, feed = dense_session(4096, 4096, threads=threads), "x"
    else:
        sess, feed = network_session(net, threads=threads), "input"
    x = np.random.default_rng(0).standard_normal((1, *net.input_shape)).astype(np.float32)
    return lambda: sess.run(None, {feed: x})


def burst(fn, n):
    """fn run n times back to back (interleaved_times times the whole burst; latency divides by n)."""
    def run():
        for _ in range(n):
            fn()
    return run


def latency(name, net, rounds: int, n: int) -> dict:
    libs = {t: xnorgen.build(net, threads=t) for t in (1, 2)}
    x = np.random.default_rng(0).uniform(-1, 1, libs[1].input_shape).astype(np.float32)
    assert np.array_equal(libs[1](x), libs[2](x)), "threads changed the bits"
    fns = {f"xnorgen {t}": burst(lambda lib=lib: lib(x), n) for t, lib in libs.items()}
    for t in (1, 2):
        ort = ort_session(name, net, t)
        if ort is not None:
            fns[f"ort {t}"] = burst(ort, n)
    times = {k: v / n for k, v in interleaved_times(fns, rounds).items()}
    r = {"ms": {k: float(np.median(v)) * 1e3 for k, v in times.items()},
         "xnorgen 1/2": float(np.median(times["xnorgen 1"] / times["xnorgen 2"]))}
    if "ort 2" in times:
        r["ort 1/2"] = float(np.median(times["ort 1"] / times["ort 2"]))
        r["ort/xnorgen at 2"] = float(np.median(times["ort 2"] / times["xnorgen 2"]))
        r["ort/xnorgen at 1"] = float(np.median(times["ort 1"] / times["xnorgen 1"]))
    return r


def print_latency(a):
    print(f"one sample, {a.rounds} interleaved rounds, burst {a.burst}, medians\n")
    print("| item | xnorgen 1 thread ms | 2 threads ms | xnorgen 2 threads / 1 | onnxruntime 1 thread ms "
          "| 2 threads ms | onnxruntime 2 / 1 | vs onnxruntime, 1 thread each | vs onnxruntime, 2 threads each |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for name, net in networks(tmp, a.only.split(",")):
            r = latency(name, net, a.rounds, a.burst)
            ms = r["ms"]
            ort = (f"{ms['ort 1']:.3f} | {ms['ort 2']:.3f} | {r['ort 1/2']:.2f}x | {r['ort/xnorgen at 1']:.1f}x | "
                   f"{r['ort/xnorgen at 2']:.1f}x") if "ort 2" in ms else "- | - | - | - | -"
            print(f"| {name} | {ms['xnorgen 1']:.3f} | {ms['xnorgen 2']:.3f} | {r['xnorgen 1/2']:.2f}x | {ort} |",
                  flush=True)


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
    ap.add_argument("--only", default=None, help="items (default: L1,L2,L3,FC,ResNet18 with --latency, "
                    "else L1,L3,FC,cifar_xnor)")
    ap.add_argument("--latency", action="store_true", help="one sample at 1 and 2 threads, against onnxruntime")
    ap.add_argument("--burst", type=int, default=1, help="--latency: calls back to back per round (the last counts)")
    a = ap.parse_args()
    if a.latency:
        a.only = a.only or "L1,L2,L3,FC,ResNet18"
        return print_latency(a)
    a.only = a.only or "L1,L3,FC,cifar_xnor"
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
