"""Predicted instructions per conv layer vs valgrind --tool=callgrind on the generated library (±20%)."""
from __future__ import annotations

import numpy as np
import pytest

import xnorgen
from netgen import write_net
from xnorgen.plan import plan_network
from xnorgen.sim import callgrind
from xnorgen.sim.machine import run_plan
from xnorgen.target import resolve

TOLERANCE = 0.20

LAYERS = [
    {"name": "stem", "type": "conv2d", "filters": 32, "kernel": 3, "padding": 1},
    {"name": "bn1", "type": "batchnorm"},
    {"name": "c2", "type": "conv2d", "mode": "xnor", "filters": 64, "kernel": 3, "padding": 1},
    {"name": "c3", "type": "conv2d", "mode": "xnor", "filters": 64, "kernel": 3},
    {"name": "c4", "type": "conv2d", "mode": "xnor", "filters": 96, "kernel": 3, "stride": 2, "padding": 1,
     "pad_value": -1},
    {"name": "c5", "type": "conv2d", "mode": "xnor", "filters": 64, "kernel": 1},
]


@pytest.mark.skipif(not callgrind.available(), reason="valgrind/callgrind_annotate not installed")
def test_predicted_instructions_within_tolerance_of_callgrind(tmp_path):
    net = xnorgen.load(write_net(tmp_path, "cg", (16, 16, 16), LAYERS, np.random.default_rng(0)))
    target = resolve("x86-64")
    predicted = {r.ident: r.instructions for r in run_plan(plan_network(net, target)).layers}
    measured = callgrind.measure(net, target, tmp_path / "build")
    convs = [lp.ident for lp in plan_network(net, target).layers if lp.layer.type == "conv2d"]
    errors = {k: predicted[k] / measured[k] - 1 for k in convs}
    assert all(abs(e) <= TOLERANCE for e in errors.values()), errors
