"""Sign thresholds (issue 19, item 3): an xnor conv whose fused binarize stage needs neither K nor
A, with the same valid bits at every pixel, decides each output's bit by an integer compare of
its mismatch count. The thresholds are tabulated from the float32 epilogue for every count, so
the bits are those of the float path: tested against the unfused network, the simulator, and on
the emulated ARM targets. A max pool between two binary layers (conv -> pool -> batchnorm ->
xnor conv, no reader needing A) runs on the packed signs (kinds/pool.py): tested the same way."""
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


def _pooled_net(tmp_path, name, rng, c=16, f=33, kernel=3, padding=1, pad_value=1, k_in=False, pool=None,
                next_k=False, hw=(9, 8)):
    """bn -> xnor conv c1 (K if k_in) -> maxpool p1 (kernel, stride, padding) -> bn1 (some gammas
    negative) -> xnor conv c2 (K if next_k) -> flatten."""
    pk, ps, pp = pool or (2, 2, 0)
    layers = [{"name": "bn0", "type": "batchnorm"},
              {"name": "c1", "type": "conv2d", "mode": "xnor", "filters": f, "kernel": kernel, "scale_input": k_in,
               "padding": padding, "pad_value": pad_value},
              {"name": "p1", "type": "maxpool", "kernel": pk, "stride": ps, "padding": pp},
              {"name": "bn1", "type": "batchnorm"},
              {"name": "c2", "type": "conv2d", "mode": "xnor", "filters": 8, "kernel": 1, "scale_input": next_k},
              {"name": "flat", "type": "flatten"}]
    return xnorgen.load(write_net(tmp_path, name, (c, *hw), layers, rng))


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
    nets = [_net(tmp_path, "x", rng, c=64, f=64, padding=1, pad_value=1, hw=(8, 8)),
            _pooled_net(tmp_path, "xp", rng, c=64, f=65, padding=1, pad_value=-1, pool=(3, 2, 1), hw=(8, 8))]
    for net in nets:
        plan = plan_network(net, t)
        assert plan.layer_plan("c1").tiling.sign_thresholds
        x = rng.standard_normal((2, *net.input_shape)).astype(np.float32)
        y = run_on_target(net, x, target)
        assert np.array_equal(y, np.stack([run_plan(plan, s).output.reshape(y.shape[1:]) for s in x])), net.name
        assert np.array_equal(y, xnorgen.build(net, fuse=False)(x)), net.name


def test_the_weight_bytes_count_the_tables(tmp_path):
    from xnorgen.kinds import layer_consts, weight_bytes
    net = _net(tmp_path, "w", np.random.default_rng(5))
    plan = plan_network(net, resolve("host"))
    lp = plan.layer_plan("c1")
    emitted = sum(len(c.values) * c.itemsize(plan.target) for c in layer_consts(lp, plan.target, plan))
    assert {c.suffix for c in layer_consts(lp, plan.target, plan)} >= {"thr", "inv"}
    assert weight_bytes(lp, plan.target)["packed"] == emitted


def test_a_max_pool_between_binary_layers_runs_on_bits(tmp_path):
    rng = np.random.default_rng(6)

    def bit_pool(net):
        return plan_network(net, resolve("host")).layer_plan("p1").bit_pool

    assert bit_pool(_pooled_net(tmp_path, "a", rng)) == "bin_bn1"
    assert bit_pool(_pooled_net(tmp_path, "a0", rng, padding=0, pad_value=0))  # no padding: n is fixed
    assert not bit_pool(_pooled_net(tmp_path, "b", rng, k_in=True))     # K: no thresholds, so float pool
    assert not bit_pool(_pooled_net(tmp_path, "b0", rng, pad_value=0))  # zero padding: n varies, likewise
    assert not bit_pool(_pooled_net(tmp_path, "c", rng, next_k=True))   # the reader needs A: floats
    lib = xnorgen.build(_pooled_net(tmp_path, "d", rng))
    stage = next(st for st in lib.manifest["binarize_stages"] if st["name"] == "bin_bn1")
    assert stage["pool"] == "p1" and stage["prepool"] and stage["reads"] == "c1"
    assert {"c1", "p1", "bn1"} <= set(lib.manifest["elided_tensors"])
    c1 = next(la for la in lib.manifest["layers"] if la["name"] == "c1")
    assert c1["tiling"]["sign_thresholds"] is True                      # +-1 padding, no K: thresholds


def test_the_bit_pool_gives_the_bits_of_the_float_path(tmp_path):
    """Random shapes: odd channel counts (bits past the channels in the last word), pools with
    stride, overlap and padding, +-1 conv padding or none, negative batchnorm scales."""
    for seed in range(8):
        rng = np.random.default_rng(60 + seed)
        pk = int(rng.integers(1, 4))
        pool = (pk, int(rng.integers(1, 3)), int(rng.integers(0, pk)))
        net = _pooled_net(tmp_path, f"b{seed}", rng, c=int(rng.choice([3, 16, 64, 65])),
                          f=int(rng.choice([7, 33, 64, 65])), kernel=[3, int(rng.choice([1, 2, 3]))],
                          padding=seed % 2, pad_value=int(rng.choice([1, -1] if seed % 2 else [0, 1, -1])),
                          pool=pool, hw=(int(rng.integers(4, 11)), int(rng.integers(4, 11))))
        plan = plan_network(net, resolve("host"))
        assert plan.layer_plan("p1").bit_pool and plan.layer_plan("c1").tiling.sign_thresholds, seed
        x = rng.standard_normal((4, *net.input_shape)).astype(np.float32)
        fused = xnorgen.build(net)(x)
        assert np.array_equal(fused, xnorgen.build(net, fuse=False)(x)), seed
        sim = np.stack([run_plan(plan, s).output.reshape(fused.shape[1:]) for s in x])
        assert np.array_equal(fused, sim), seed


def test_the_bit_pool_weight_bytes_count_its_mask(tmp_path):
    from xnorgen.kinds import layer_consts, weight_bytes
    net = _pooled_net(tmp_path, "m", np.random.default_rng(7), f=65)
    plan = plan_network(net, resolve("host"))
    lp = plan.layer_plan("p1")
    consts = layer_consts(lp, plan.target, plan)
    assert [c.suffix for c in consts] == ["neg"]
    assert weight_bytes(lp, plan.target)["packed"] == sum(len(c.values) * c.itemsize(plan.target) for c in consts)
