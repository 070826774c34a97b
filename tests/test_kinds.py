"""The kernel-kind registry (xnorgen.kinds) and the kind added through it, leaky_relu.

A kind's parts live under one name in xnorgen/kinds/, templates/ and the simulator; these tests
hold the registry complete, and carry leaky_relu end to end: net.yaml -> plan -> C == simulator
bit for bit, both == the float64 golden model within the contract's tolerance."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import xnorgen
from netgen import random_input, write_net
from xnorgen.frontend.description import LAYER_TYPES
from xnorgen.kinds import KINDS, kind_name
from xnorgen.plan.core import plan_network
from xnorgen.reference import EVAL
from xnorgen.sim.machine import FLOAT_MODELS, STAGE_MODELS, run_plan
from xnorgen.target import resolve
from xnorgen.training.ops import make_op

TEMPLATES = Path(str(resources.files("xnorgen.templates")))


def test_every_kind_has_a_template_and_a_simulator_model():
    assert set(KINDS) == set(FLOAT_MODELS) | set(STAGE_MODELS)
    for name, kind in KINDS.items():
        assert (TEMPLATES / kind.template).is_file(), name


@pytest.mark.parametrize("ltype", sorted(LAYER_TYPES))
def test_every_layer_type_has_one_kind_a_golden_model_and_a_training_op(ltype):
    cls, _ = LAYER_TYPES[ltype]
    for mode in ("float", "bwn", "xnor") if "mode" in cls.__dataclass_fields__ else (None,):
        extra = {"mode": mode} if mode else {}
        layer = cls(name="l", type=ltype, inputs=("input",), **_required(cls), **extra)
        assert kind_name(layer) in KINDS
        make_op(layer)                    # raises for a type training cannot run
    assert ltype in EVAL


def _required(cls) -> dict:
    fields = cls.__dataclass_fields__
    return {k: v for k, v in {"filters": 2, "kernel": (1, 1), "units": 2}.items() if k in fields}


def leaky_net(tmp_path, name, rng, c, h, w, slope, mode):
    """float conv -> leaky_relu -> conv of `mode` (xnor: its binarize stage reads the leaky
    output) -> leaky_relu -> flatten -> dense -> leaky_relu (the output, a materialized kernel)."""
    layers = [{"name": "c1", "type": "conv2d", "filters": int(rng.integers(1, 9)), "kernel": 3, "padding": 1},
              {"name": "a1", "type": "leaky_relu", "slope": slope},
              {"name": "c2", "type": "conv2d", "mode": mode, "filters": int(rng.integers(1, 40)),
               "kernel": [int(rng.integers(1, 4)), int(rng.integers(1, 4))], "stride": int(rng.integers(1, 3))},
              {"name": "a2", "type": "leaky_relu", "slope": slope},
              {"name": "f", "type": "flatten"},
              {"name": "d", "type": "dense", "units": 5, "bias": True},
              {"name": "out", "type": "leaky_relu"}]
    return xnorgen.load(write_net(tmp_path, name, [c, h, w], layers, rng))


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), slope=st.sampled_from([0.0, 0.01, 0.1, 1 / 3, 1.0]),
       mode=st.sampled_from(["float", "bwn", "xnor"]))
def test_leaky_relu_c_equals_simulator_equals_reference(tmp_path_factory, seed, slope, mode):
    rng = np.random.default_rng(seed)
    tmp = tmp_path_factory.mktemp("leaky")
    net = leaky_net(tmp, f"lk{seed}", rng, int(rng.integers(1, 5)), int(rng.integers(3, 9)),
                    int(rng.integers(3, 9)), slope, mode)
    x = random_input(net, rng)
    x[0, 0, 0] = 0.0                                  # the boundary: leaky(0) = 0
    c_out = xnorgen.build(net, "x86-64")(x)
    sim = run_plan(plan_network(net, resolve("x86-64")), x).output
    assert np.array_equal(c_out, sim)
    ref = xnorgen.reference(net, x)
    np.testing.assert_allclose(c_out, ref, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(ref).max()))


def test_leaky_relu_negative_side_is_scaled(tmp_path):
    net = xnorgen.load(write_net(tmp_path, "lk", [4], [{"name": "a", "type": "leaky_relu", "slope": 0.25}]))
    x = np.array([-2.0, -0.5, 0.0, 3.0], dtype=np.float32)
    assert xnorgen.build(net, "x86-64")(x).tolist() == [-0.5, -0.125, 0.0, 3.0]


@pytest.mark.parametrize("slope", ["-0.1", "1.5", "x", "true", ".nan", ".inf"])
def test_leaky_relu_slope_is_checked(tmp_path, slope):
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\ninput: {{shape: [4]}}\nlayers:\n  - {{name: a, type: leaky_relu, slope: {slope}}}\n")
    with pytest.raises(xnorgen.XnorgenError, match=r"bad\.yaml: layer a: slope: expected a number in \[0, 1\]"):
        xnorgen.load(path, weights=False)


def test_leaky_relu_trains(tmp_path):
    """Its gradient reaches the weights: a short training run improves on chance."""
    path = write_net(tmp_path, "lt", [1, 8, 8], [
        {"name": "c", "type": "conv2d", "filters": 8, "kernel": 3, "padding": 1},
        {"name": "a", "type": "leaky_relu", "slope": 0.1},
        {"name": "f", "type": "flatten"}, {"name": "d", "type": "dense", "units": 10}])
    result = xnorgen.train(path, "digits", epochs=2, seed=0, progress=False)
    assert result.test_accuracy > 0.5
