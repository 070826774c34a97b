"""Instructions per inference with and without the binary path between binary layers.

    python benchmarks/binary_path.py [--target cortex-m4] [--target armv8]

The binary path (issue 19, item 3) is two plan decisions, each the same bits as the float path:
- sign thresholds: an xnor conv whose next stage needs neither K nor A sets each output's bit by
  an integer compare of its mismatch count (kinds/conv_xnor.py sign_thresholds);
- bit pools: a max pool between that conv and the batchnorm runs on the packed signs (kinds/pool.py).
Without them, the conv writes floats, the pool pools floats and a binarize stage packs them.

Counted on the emulated parts (`xnorgen measure`'s counters: qemu -icount on the M4, the
qemu-aarch64 block log on armv8), per network:
- the examples as shipped (their xnor convs have K, and their readers need A: nothing changes);
- the same networks with `scale_input: false` and `pad_value: 1` in every xnor conv ("no K"),
  random weights: what a network built for the binary path gets (instruction counts do not
  depend on the weights).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

import xnorgen
from xnorgen.frontend.description import read_description
from xnorgen.frontend.graph import build_graph
from xnorgen.frontend.weights import random_weights
from xnorgen.kinds import conv_xnor
from xnorgen.plan import fusion
from xnorgen.sim.measured import measured_counts
from xnorgen.target import resolve

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = [ROOT / "examples" / "digits" / "digits_xnor.yaml", ROOT / "examples" / "cifar_xnor.yaml"]


def without_k(path: Path, directory: Path):
    """The network at path with scale_input false and pad_value 1 in every xnor conv, random weights."""
    doc = yaml.safe_load(path.read_text())
    doc["name"] = doc["name"] + "_nok"
    doc["weights"] = f"{doc['name']}.npz"
    for layer in doc["layers"]:
        if layer.get("mode") == "xnor" and layer["type"] == "conv2d":
            layer.update(scale_input=False, pad_value=1)
    out = directory / f"{doc['name']}.yaml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    arrays = random_weights(build_graph(read_description(out)), np.random.default_rng(0), negative_gamma=True)
    np.savez(directory / doc["weights"], **arrays)
    return xnorgen.load(out)


def count(net, target, binary_path: bool) -> dict[str, int]:
    """{kernel: instructions}, with the binary path on or off (the two plan decisions patched)."""
    saved = fusion.bit_pool_candidate, conv_xnor.thresholds_apply
    if not binary_path:
        fusion.bit_pool_candidate = lambda *args: None
        conv_xnor.thresholds_apply = lambda *args: False
    try:
        return measured_counts(net, target)
    finally:
        fusion.bit_pool_candidate, conv_xnor.thresholds_apply = saved


def moved(a: int, b: int) -> bool:
    """A change beyond the counters' jitter (a few dozen instructions per kernel on the M4)."""
    return abs(a - b) > max(100, 0.01 * max(a, b))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", action="append", help="cortex-m4 and/or armv8 (default: both)")
    args = ap.parse_args(argv)
    targets = [resolve(t) for t in (args.target or ["cortex-m4", "armv8"])]
    print("| network | target | without | with | fewer | kernels that change by > 1 % (without -> with) |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as d:
        nets = []
        for path in EXAMPLES:
            nets += [xnorgen.load(path), without_k(path, Path(d))]
        for net in nets:
            for t in targets:
                off, on = count(net, t, False), count(net, t, True)
                changed = ", ".join(f"{k} {off.get(k, 0):,} -> {on.get(k, 0):,}" for k in sorted(set(off) | set(on))
                                    if moved(off.get(k, 0), on.get(k, 0)))
                a, b = sum(off.values()), sum(on.values())
                print(f"| {net.name} | {t.name} | {a:,} | {b:,} | {a / b:.3f}x | {changed or 'none'} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
