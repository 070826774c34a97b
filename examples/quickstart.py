"""The main job, end to end: compile the example network to a C library, build it with make,
load it with cffi, check it against the golden model and report size and speed.

    python examples/quickstart.py [--out DIR]
"""
import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import xnorgen
from xnorgen.api import compile_network
from xnorgen.toolchain.output import write_directory

HERE = Path(__file__).parent


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/cifar_xnor", help="where to write the C library")
    args = ap.parse_args(argv)

    net = xnorgen.load(HERE / "cifar_xnor.yaml")
    plan, files = compile_network(net, "host")
    out = write_directory(files, args.out)
    print(f"compiled {net.name} for {plan.target.name}: {len(plan.layers)} layers -> {out}/")
    if shutil.which("make"):
        subprocess.run(["make", "-s", "-C", str(out)], check=True)
        print(f"built {out / ('lib' + net.name + '.a')} with make")

    lib = xnorgen.build(net, "host")
    x = np.random.default_rng(0).standard_normal((16, *net.input_shape)).astype(np.float32)
    y, want = lib(x), xnorgen.reference(net, x)
    err = float(np.abs(y - want).max())
    tol = 1e-4 * max(1.0, float(np.abs(want).max()))
    agree = float(np.mean(y.argmax(axis=1) == want.argmax(axis=1)))
    print(f"C vs golden model on 16 samples: max error {err:.2e} (tolerance {tol:.0e}), argmax agreement {agree:.0%}")

    m = lib.manifest
    f32 = sum(lay["weight_bytes"]["float32"] for lay in m["layers"] if lay["weight_bytes"])
    packed = sum(lay["weight_bytes"]["packed"] for lay in m["layers"] if lay["weight_bytes"])
    print(f"weights: {f32 / 1024:.1f} KiB as float32 -> {packed / 1024:.1f} KiB stored ({f32 / packed:.1f}x smaller)")
    print(f"arena:   {m['arena_size'] / 1024:.1f} KiB (first-fit; {m['arena_without_reuse'] / 1024:.1f} KiB without reuse)")
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        lib(x[0])
        times.append(time.perf_counter() - t0)
    print(f"latency: {np.median(times) * 1e3:.2f} ms per sample (median of 20, one thread)")
    return 0 if err <= tol else 1


if __name__ == "__main__":
    sys.exit(main())
