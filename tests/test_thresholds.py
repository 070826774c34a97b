"""Sign thresholds (issue 19, item 3): an xnor conv whose fused binarize stage needs neither K nor
A, with the same valid bits at every pixel, decides each output's bit by an integer compare of
its mismatch count. The thresholds are tabulated from the float32 epilogue for every count, so
the bits are those of the float path: tested against the unfused network, the simulator, and on
the emulated ARM targets."""
from __future__ import annotations

import numpy as np
import pytest

import xnorgen
from netgen import write_net
from xnorgen.kinds.conv_xnor import sign_thresholds
from xnorgen.codegen.lowering import Const
from xnorgen.plan.core import plan_network
from xnorgen.sim.machine import run_plan
from xnorgen.target import executes_here, resolve


def _net(tmp_path, name, rng, c=16, f=32, padding=0, pad_value=0, scale_input=False, bias=False, hw=(9, 8)):
    layers = [{"name": "bn0", "type": "batchnorm"},
              {"name": "c1", "type": "conv2d", "mode": "xnor", "filters": f, "kernel": 3, "scale_input": scale_input,
               "bias": bias, "padding": padding, "pad_value": pad_value},
              {"name": "bn1", "type": "batchnorm"},
              {"name": "c2", "type": "conv2d", "mode": "xnor", "filters": 8, "kernel": 3, "scale_input": False},
              {"name": "flat", "type": "flatten"}]
    net = xnorgen.load(write_net(tmp_path, name, (c, *hw), layers, rng))
    bn1 = net.layer("bn1")                         # some negative gammas: the compare flips
    bn1.params["gamma"] = bn1.params["gamma"] * rng.choice([-1.0, 1.0], bn1.params["gamma"].shape)
    return net


def _uses_thresholds(net, target="host"):
    plan = plan_network(net, resolve(target))
    return plan.layer_plan("c1").tiling.sign_thresholds


def test_the_plan_uses_thresholds_only_where_the_count_decides(tmp_path):
    rng = np.random.default_rng(0)
    assert _uses_thresholds(_net(tmp_path, "a", rng))                              # valid conv, no K
    assert _uses_thresholds(_net(tmp_path, "b", rng, padding=1, pad_value=1))      # +-1 padding: n is fixed
    assert not _uses_thresholds(_net(tmp_path, "c", rng, padding=1))               # zero padding: n varies
    assert not _uses_thresholds(_net(tmp_path, "d", rng, scale_input=True))        # K varies per pixel
    manifest = xnorgen.build(_net(tmp_path, "e", rng)).manifest
    c1 = next(la for la in manifest["layers"] if la["name"] == "c1")
    assert c1["tiling"]["sign_thresholds"] is True


def test_thresholds_give_the_bits_of_the_float_path(tmp_path):
    for seed in range(6):
        rng = np.random.default_rng(10 + seed)
        net = _net(tmp_path, f"t{seed}", rng, c=int(rng.choice([3, 16, 64, 65])), f=int(rng.choice([8, 33, 64])),
                   padding=seed % 2, pad_value=(seed % 2) * int(rng.choice([1, -1])), bias=bool(seed % 3))
        assert _uses_thresholds(net)
        x = rng.standard_normal((4, *net.input_shape)).astype(np.float32)
        fused = xnorgen.build(net)(x)
        assert np.array_equal(fused, xnorgen.build(net, fuse=False)(x)), seed      # no fusion: float path
        plan = plan_network(net, resolve("host"))
        sim = np.stack([run_plan(plan, s).output.reshape(fused.shape[1:]) for s in x])
        assert np.array_equal(fused, sim), seed


def test_the_table_reproduces_every_count():
    """sign_thresholds against a brute-force float32 evaluation, with ties and negative scales."""
    rng = np.random.default_rng(3)

    class L:                                            # the few fields sign_thresholds reads
        kernel = (3, 3)

    class LP:
        layer = L()
        in_shapes = [(7, 5, 5)]

    n = 63
    f = 40
    alpha = rng.uniform(0.1, 2, f)
    bias = rng.standard_normal(f)
    bn = {"mean": rng.integers(-n, n, f) * alpha + bias,       # v == mean exactly for some counts
          "scale": rng.uniform(0.5, 2, f) * rng.choice([-1, 1], f), "beta": np.where(rng.random(f) < 0.3, 0.0,
                                                                                       rng.standard_normal(f))}
    thr, inv = sign_thresholds(LP(), [Const("alpha", "float", alpha), Const("bias", "float", bias)], bn)
    f32 = np.float32
    for m in range(n + 1):
        v = f32(n - 2 * m) * alpha.astype(f32) + bias.astype(f32)
        y = (v - bn["mean"].astype(f32)) * bn["scale"].astype(f32) + bn["beta"].astype(f32)
        assert np.array_equal(~(y >= 0), (m >= thr) ^ inv.astype(bool)), m


@pytest.mark.cross
@pytest.mark.parametrize("target", ["cortex-m4", "armv8"])
def test_thresholds_on_the_emulated_targets(tmp_path, target):
    from xnorgen.api import run_on_target
    from xnorgen.toolchain import firmware
    t = resolve(target)
    if not (firmware.can_run(t) or executes_here(t)):
        pytest.skip(f"{target}: its compiler or emulator is not installed (.ci/run installs them)")
    rng = np.random.default_rng(4)
    net = _net(tmp_path, "x", rng, c=64, f=64, padding=1, pad_value=1, hw=(8, 8))
    assert _uses_thresholds(net, target)
    x = rng.standard_normal((2, *net.input_shape)).astype(np.float32)
    plan = plan_network(net, t)
    y = run_on_target(net, x, target)
    assert np.array_equal(y, np.stack([run_plan(plan, s).output.reshape(y.shape[1:]) for s in x]))


def test_the_weight_bytes_count_the_tables(tmp_path):
    from xnorgen.kinds import layer_consts, weight_bytes
    net = _net(tmp_path, "w", np.random.default_rng(5))
    plan = plan_network(net, resolve("host"))
    lp = plan.layer_plan("c1")
    emitted = sum(len(c.values) * c.itemsize(plan.target) for c in layer_consts(lp, plan.target, plan))
    assert {c.suffix for c in layer_consts(lp, plan.target, plan)} >= {"thr", "inv"}
    assert weight_bytes(lp, plan.target)["packed"] == emitted
