"""The numbers README.md and docs/*.md quote from the tool's output, recomputed with the tool.

Each row of DOCUMENTED is (file, what, how): `how()` computes, with xnorgen, the text the file
must contain (whitespace and line breaks are not compared). When a change moves a number, the
test names the file and gives the text to write. Only outputs that are the same on any machine
are here (plans, the paper model, weight and arena bytes, the golden model's accuracy); timings
and benchmark results (benchmarks/RESULTS.md, the measured tables of docs/simulator.md) are not.
"""
from __future__ import annotations

import dataclasses
import shlex
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import xnorgen
from xnorgen.cli import main
from xnorgen.plan.core import plan_network
from xnorgen.sim.paper import speedup, sweep_channels, sweep_kernel
from xnorgen.target import resolve

ROOT = Path(__file__).resolve().parents[1]
# Weight padding and the arena depend on the target; the docs' memory figures are for this one.
MEMORY_TARGET = "x86-64-avx2"


def console(cmd, last_lines=None):
    """`$ cmd` and what it prints, as a README console block shows it (or only its last lines)."""
    args = [str(ROOT / a) if a.startswith("examples/") else a for a in shlex.split(cmd)[1:]]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    out = r.output.rstrip("\n")
    return f"$ {cmd}\n{out}" if last_lines is None else "\n".join(out.splitlines()[-last_lines:])


@cache
def report(net, kind, target=MEMORY_TARGET):
    return xnorgen.simulate(str(ROOT / "examples" / f"{net}.yaml"), target=target, report=kind)


def speedup_row(net):
    t = report(net, "speedup")["total"]
    return f"| {net} | {t['speedup']:.2f} | {t['binary_layers_speedup']:.2f} |"


def memory_row(net):
    t = report(net, "memory")["total"]
    return (f"| {net} | {t['params']:,} | {t['float64'] / 2**20:.1f} | {t['all_binary'] / 2**20:.2f} | "
            f"{t['ratio_float64_all_binary']:.1f}× | {t['packed'] / 2**20:.2f} | {t['ratio_float64_packed']:.1f}× |")


def layer(net, name, kind="memory"):
    return next(m for m in report(net, kind)["layers"] if m["layer"] == name)


def batchnorm_floats_per_channel():
    bn = layer("resnet18", "bn1")                       # params: gamma, beta, mean, var per channel
    return f"batchnorm folded to {bn['packed'] // (bn['params'] // 4) // 4} floats per channel"


def figure_4_points():
    b = {p["c"]: p["speedup"] for p in sweep_channels()}
    c = {p["kernel"]: p["speedup"] for p in sweep_kernel()}
    return (f"4(b) c=1: {b[1]:.2f}, c=64: {b[64]:.2f}, c=256: {b[256]:.2f}; "
            f"4(c) 1×1: {c[1]:.2f}, 3×3: {c[3]:.2f}, 5×5: {c[5]:.2f}")


def fold_pool_arena():
    """ResNet-18's arena on cortex-m4 without and with its max pool folded into the conv."""
    net, m4 = xnorgen.load(ROOT / "examples/resnet18.yaml", weights=False), resolve("cortex-m4")
    off, on = (plan_network(net, dataclasses.replace(m4, fold_pool=f)).arena_size for f in (False, True))
    return f"ResNet-18's arena {off / 1e6:.1f} → {on / 1e6:.1f} MB"


def digits_accuracy():
    """Test accuracy of the committed digits weights, through the trainer's batched forward pass
    (test_train_e2e holds its predictions equal to the golden model's; it is 10x faster)."""
    pytest.importorskip("sklearn")
    from xnorgen.training.data import load_dataset
    from xnorgen.training.trainer import Model
    acc = []
    for mode in ("float", "bwn", "xnor"):
        net = xnorgen.load(ROOT / f"examples/digits/digits_{mode}.yaml")
        data = load_dataset("digits", net.input_shape)
        model = Model(net)
        model.load_arrays({f"{lay.name}.{p}": a for lay in net.layers for p, a in lay.params.items()})
        acc.append(100 * model.accuracy(data.x_test.astype(np.float32).astype(np.float64), data.y_test))
    return f"On the digits test set ({len(data.y_test)} images) the committed float / BWN / XNOR-Net CNNs reach " \
           f"{acc[0]:.1f} / {acc[1]:.1f} / {acc[2]:.1f} %"


DOCUMENTED = [
    ("README.md", "alexnet speedup report",
     lambda: console("xnorgen simulate examples/alexnet.yaml --report speedup")),
    ("README.md", "resnet18 memory report, command",
     lambda: f"$ xnorgen simulate examples/resnet18.yaml --target {MEMORY_TARGET} --report memory"),
    ("README.md", "resnet18 memory report, totals and arena",
     lambda: console(f"xnorgen simulate examples/resnet18.yaml --target {MEMORY_TARGET} --report memory", 2)),
    ("README.md", "arena saved by fold_pool", fold_pool_arena),
    ("README.md", "digits accuracies", digits_accuracy),
    ("docs/simulator.md", "paper layer speedup", lambda: f"N_I=14² gives **{speedup(256, 9):.2f}**"),
    ("docs/simulator.md", "Figure 4(b)/(c) points", figure_4_points),
    ("docs/simulator.md", "speedup alexnet", lambda: speedup_row("alexnet")),
    ("docs/simulator.md", "speedup resnet18", lambda: speedup_row("resnet18")),
    ("docs/simulator.md", "speedup vgg19", lambda: speedup_row("vgg19")),
    ("docs/simulator.md", "memory target", lambda: f"Memory figures for `{MEMORY_TARGET}`"),
    ("docs/simulator.md", "memory alexnet", lambda: memory_row("alexnet")),
    ("docs/simulator.md", "memory resnet18", lambda: memory_row("resnet18")),
    ("docs/simulator.md", "memory vgg19", lambda: memory_row("vgg19")),
    ("docs/simulator.md", "batchnorm as emitted", batchnorm_floats_per_channel),
    ("docs/simulator.md", "AlexNet fc8 float32 bytes",
     lambda: f"AlexNet's fc8 alone is {layer('alexnet', 'fc8')['float32'] / 1e6:.0f} MB"),
    ("docs/targets.md", "paper layer speedup", lambda: f"The paper's model predicts {speedup(256, 9):.2f}×"),
]


def _words(text):
    return " ".join(text.split())


@pytest.mark.parametrize("path, what, how", DOCUMENTED, ids=[f"{p}: {w}" for p, w, _ in DOCUMENTED])
def test_documented_number_is_what_the_tool_says(path, what, how):
    expected = how()
    found = _words(expected) in _words((ROOT / path).read_text())
    assert found, f"{path} ({what}) should say:\n{expected}"
