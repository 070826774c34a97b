"""Predicted instructions per conv layer vs valgrind --tool=callgrind on the generated library (±20%).

Target x86-64 (scalar POPCNT, SSE2 float vectors): valgrind 3.19 cannot run AVX-512 code, so the
host's avx512 build is timed (benchmarks/bench.py) rather than counted. The network exercises
every kernel path the model has: a float stem (grouped and single columns), a batchnorm folded
into a standalone binarize stage, an xnor conv binarizing the next input in its epilogue, xnor
convs with padding 0/1, stride 2, pad_value -1, 1x1 with two words per pixel, a bwn conv and an
xnor dense layer.
"""
from __future__ import annotations

import numpy as np
import pytest

import xnorgen
from netgen import write_net
from xnorgen.plan.core import plan_network
from xnorgen.sim import callgrind
from xnorgen.sim.machine import run_plan
from xnorgen.target import resolve

TOLERANCE = 0.20

LAYERS = [
    {"name": "stem", "type": "conv2d", "filters": 32, "kernel": 3, "padding": 1},
    {"name": "bn1", "type": "batchnorm"},
    {"name": "c2", "type": "conv2d", "mode": "xnor", "filters": 64, "kernel": 3, "padding": 1},
    {"name": "bn2", "type": "batchnorm"},
    {"name": "c3", "type": "conv2d", "mode": "xnor", "filters": 64, "kernel": 3},
    {"name": "c4", "type": "conv2d", "mode": "xnor", "filters": 96, "kernel": 3, "stride": 2, "padding": 1,
     "pad_value": -1},
    {"name": "c5", "type": "conv2d", "mode": "xnor", "filters": 64, "kernel": 1},
    {"name": "b6", "type": "conv2d", "mode": "bwn", "filters": 16, "kernel": 3, "padding": 1},
    {"name": "flat", "type": "flatten"},
    {"name": "fc", "type": "dense", "mode": "xnor", "units": 64},
]


@pytest.mark.skipif(not callgrind.available(), reason="valgrind/callgrind_annotate not installed")
def test_predicted_instructions_within_tolerance_of_callgrind(tmp_path):
    net = xnorgen.load(write_net(tmp_path, "cg", (16, 16, 16), LAYERS, np.random.default_rng(0)))
    target = resolve("x86-64")
    plan = plan_network(net, target)
    assert plan.binarize and any(lp.binarize_out for lp in plan.layers)     # the fused paths are measured
    predicted = {r.ident: r.instructions for r in run_plan(plan).layers}
    measured = callgrind.measure(net, target, tmp_path / "build")
    convs = [lp.ident for lp in plan.layers if lp.layer.type == "conv2d"]
    assert len(convs) == 6 and all(k in measured for k in convs)
    errors = {k: predicted[k] / measured[k] - 1 for k in convs}
    print({k: (predicted[k], measured[k], f"{e:+.1%}") for k, e in errors.items()})
    assert all(abs(e) <= TOLERANCE for e in errors.values()), errors


@pytest.mark.skipif(not callgrind.available(), reason="valgrind/callgrind_annotate not installed")
def test_measure_refuses_avx512_with_one_line(tmp_path):
    """valgrind dies on AVX-512 code: `xnorgen measure -t x86-64-avx512` says so and names the
    targets it can count, instead of a crash (exit 2, one line)."""
    from click.testing import CliRunner
    from xnorgen.cli import main
    path = write_net(tmp_path, "m", (16, 6, 6), [{"name": "c", "type": "conv2d", "mode": "xnor", "filters": 8,
                                                  "kernel": 3}])
    r = CliRunner().invoke(main, ["measure", str(path), "-t", "x86-64-avx512"])
    if "cannot run" not in r.output and r.exit_code == 2:       # a machine that cannot build for avx512
        pytest.skip(r.output.strip())
    assert r.exit_code == 2 and r.output.count("\n") == 1, r.output
    assert "x86-64-avx2" in r.output and "AVX-512" in r.output
