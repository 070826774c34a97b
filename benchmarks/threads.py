"""Threads: one sample's latency, and a batch's throughput (issue 19, items 1, 4 and 5).

    python benchmarks/threads.py --latency [--rounds 30] [--burst 1] [--only L1,L2,L3,FC,ResNet18]
    python benchmarks/threads.py [--batch 16] [--rounds 15] [--only L1,L2,L3,FC,cifar_xnor]

--latency: one sample through `lib(x)` of `xnorgen.build(net, threads=1)` and `threads=2` (the
second runs <name>_infer_parallel on the library's xg_pool), and onnxruntime fp32's twin of the
same shape at 1 and 2 intra-op threads, in interleaved rounds. Each round runs every candidate
`--burst` times back to back and counts the mean per call (burst 1: workers woken from sleep at
each call, as after any pause; burst 5: mostly awake from the call before, as in a stream).
Prints medians and the per-round ratios: xnorgen 1 thread / 2 threads, the plain call at one
thread / `bind` (the same sample through a fixed arena and output, item 4), the same with
`lib(x, out=y)` reusing an output array / `bind`, onnxruntime 1 / 2
threads, and onnxruntime / xnorgen at 1 and at 2 threads each. The bits of both xnorgen variants are checked equal.

Without --latency: one batch through `lib(x)` at threads=1 and threads=2, at threads=1 with dense
layers batched (target knob batch_dense, <name>_infer_batch), the same batch one sample at a time
through `bind` (<name>_infer, no Python per call beyond the cffi call), and onnxruntime fp32 on
the same batch at 1 and 2 threads, in interleaved rounds;
prints medians, the per-round ratios, and binary MACs per cycle at the clock benchmarks/clock.py
measures in the same run.
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


def ort_session(name, net, threads, batch=1):
    """onnxruntime's fp32 twin of a benchmark item at `threads` intra-op threads on a batch, and
    its input, as a callable; None without onnxruntime."""
    try:
        from onnx_models import conv_session, dense_session, network_session
    except ImportError:
        return None
    if name in LAYERS:
        spec = LAYERS[name]
        sess = conv_session(spec["c"], spec["h"], spec["w"], spec["f"], spec["k"], spec["pad"], threads=threads,
                            batch=batch)
        feed = "x"
    elif name == "FC":
        sess, feed = dense_session(4096, 4096, threads=threads, batch=batch), "x"
    else:
        sess, feed = network_session(net, threads=threads, batch=batch), "input"
    x = np.random.default_rng(0).standard_normal((batch, *net.input_shape)).astype(np.float32)
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
    fns["bind"] = burst(libs[1].bind(x, np.empty(libs[1].output_shape, np.float32)), n)
    y = np.empty(libs[1].output_shape, np.float32)
    fns["out="] = burst(lambda: libs[1](x, out=y), n)
    for t in (1, 2):
        ort = ort_session(name, net, t)
        if ort is not None:
            fns[f"ort {t}"] = burst(ort, n)
    times = {k: v / n for k, v in interleaved_times(fns, rounds).items()}
    return {"ms": {k: float(np.median(v)) * 1e3 for k, v in times.items()},
            "xnorgen 1/2": median_ratio(times, "xnorgen 1", "xnorgen 2"),
            "plain/bind": median_ratio(times, "xnorgen 1", "bind"),
            "out/bind": median_ratio(times, "out=", "bind"), **ort_ratios(times, "xnorgen 1", "xnorgen 2")}


def median_ratio(times: dict, a: str, b: str) -> float:
    """The median over rounds of a's time / b's in the same round."""
    return float(np.median(times[a] / times[b]))


def ort_ratios(times: dict, one: str, two: str) -> dict:
    """onnxruntime's 2-thread scaling and its time over xnorgen's (`one` at 1 thread, `two` at 2),
    if onnxruntime ran."""
    if "ort 2" not in times:
        return {}
    return {"ort 1/2": median_ratio(times, "ort 1", "ort 2"), "ort/xnorgen at 1": median_ratio(times, "ort 1", one),
            "ort/xnorgen at 2": median_ratio(times, "ort 2", two)}


ORT_COLUMNS = ["onnxruntime 1 thread ms", "2 threads ms", "onnxruntime 2 / 1", "vs onnxruntime, 1 thread each",
               "vs onnxruntime, 2 threads each"]


def print_header(columns: list[str]) -> None:
    print("| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))


def ort_cells(r: dict, digits: int) -> str:
    """The ORT_COLUMNS cells of a result row ("-" without onnxruntime)."""
    ms = r["ms"]
    if "ort 2" not in ms:
        return " | ".join(["-"] * len(ORT_COLUMNS))
    return (f"{ms['ort 1']:.{digits}f} | {ms['ort 2']:.{digits}f} | {r['ort 1/2']:.2f}x | "
            f"{r['ort/xnorgen at 1']:.1f}x | {r['ort/xnorgen at 2']:.1f}x")


def print_latency(a):
    print(f"one sample, {a.rounds} interleaved rounds, burst {a.burst}, medians\n")
    print_header(["item", "xnorgen 1 thread ms", "2 threads ms", "xnorgen 2 threads / 1", "plain call / bind",
                  "with out= / bind", *ORT_COLUMNS])
    with tempfile.TemporaryDirectory() as tmp:
        for name, net in networks(tmp, a.only.split(",")):
            r = latency(name, net, a.rounds, a.burst)
            ms, ort = r["ms"], ort_cells(r, 3)
            print(f"| {name} | {ms['xnorgen 1']:.3f} | {ms['xnorgen 2']:.3f} | {r['xnorgen 1/2']:.2f}x | "
                  f"{r['plain/bind']:.3f} | {r['out/bind']:.3f} | {ort} |", flush=True)


def measure(name, net, batch: int, rounds: int) -> dict:
    """A batch through threads=1, threads=2, threads=1 with dense layers batched (target knob
    batch_dense: <name>_infer_batch), one sample at a time through `bind`, and onnxruntime on the
    same batch at 1 and 2 threads, interleaved."""
    from dataclasses import replace
    from xnorgen.target import resolve
    one, two = xnorgen.build(net, threads=1), xnorgen.build(net, threads=2)
    dense = xnorgen.build(net, target=replace(resolve("host"), batch_dense=True))
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
    assert np.array_equal(dense(x), want), "batched dense layers changed the bits"
    fns = {"threads=1": lambda: one(x), "threads=2": lambda: two(x), "bind": bound, "batch_dense": lambda: dense(x)}
    for t in (1, 2):
        ort = ort_session(name, net, t, batch)
        if ort is not None:
            fns[f"ort {t}"] = ort
    t = interleaved_times(fns, rounds)
    return {"ms": {k: float(np.median(v)) * 1e3 for k, v in t.items()},
            "speedup": median_ratio(t, "threads=1", "threads=2"), "bind/batch": median_ratio(t, "bind", "threads=1"),
            "batched": median_ratio(t, "threads=1", "batch_dense"), **ort_ratios(t, "threads=1", "threads=2")}


def print_batches(a):
    from bench import macs_of
    from clock import measure_clock_ghz
    ghz = measure_clock_ghz()
    print(f"batch {a.batch}, {a.rounds} interleaved rounds, medians; clock {ghz:.2f} GHz (benchmarks/clock.py)\n")
    print_header(["item", "xnorgen 1 thread ms", "bind, one sample at a time ms", "plain call gain",
                  "dense batched gain", "binary MACs/cycle, 1 thread", "xnorgen 2 threads ms", "2 threads / 1",
                  *ORT_COLUMNS])
    with tempfile.TemporaryDirectory() as tmp:
        for name, net in networks(tmp, a.only.split(",")):
            r = measure(name, net, a.batch, a.rounds)
            ms, ort = r["ms"], ort_cells(r, 2)
            binary = macs_of(net)[1] * a.batch
            per_cycle = binary / (ms["threads=1"] * 1e-3 * ghz * 1e9)
            print(f"| {name} | {ms['threads=1']:.2f} | {ms['bind']:.2f} | {r['bind/batch']:.2f}x | {r['batched']:.2f}x | "
                  f"{per_cycle:.0f} | "
                  f"{ms['threads=2']:.2f} | {r['speedup']:.2f}x | {ort} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--only", default=None, help="items (default: L1,L2,L3,FC,ResNet18 with --latency, "
                    "else L1,L2,L3,FC,cifar_xnor)")
    ap.add_argument("--latency", action="store_true", help="one sample at 1 and 2 threads, against onnxruntime")
    ap.add_argument("--burst", type=int, default=1, help="--latency: calls back to back per round (the last counts)")
    a = ap.parse_args()
    if a.latency:
        a.only = a.only or "L1,L2,L3,FC,ResNet18"
        return print_latency(a)
    a.only = a.only or "L1,L2,L3,FC,cifar_xnor"
    print_batches(a)


if __name__ == "__main__":
    main()
