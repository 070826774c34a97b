"""Fusion keeps activations packed between binary layers without changing a single number:
the fused library equals the unfused one bit for bit, and both match the golden model."""
import numpy as np
import pytest

import xnorgen
from netgen import random_input, random_network, write_net
from xnorgen.plan.core import plan_network
from xnorgen.sim.machine import run_plan
from xnorgen.target import resolve


def resnet_block_net(tmp_path, c, pad_value=0, scale_input=True, gamma_signs=None, hw=(6, 7)):
    """bn_a feeds two xnor convs (shared stage); conv1 -> bn_b -> conv2 stays packed (epilogue)."""
    xn = dict(type="conv2d", mode="xnor", kernel=3, padding=1, pad_value=pad_value, scale_input=scale_input)
    layers = [{"name": "bn_a", "type": "batchnorm"},
              {"name": "conv1", "filters": c, **xn, "bias": True},
              {"name": "bn_b", "type": "batchnorm"},
              {"name": "conv2", "filters": c, **xn},
              {"name": "down", "type": "conv2d", "mode": "xnor", "filters": c, "kernel": 1, "inputs": ["bn_a"]},
              {"name": "sum", "type": "add", "inputs": ["conv2", "down"]}]
    rng = np.random.default_rng(c)
    params = {}
    if gamma_signs is not None:                         # gamma < 0 and gamma = 0 must stay exact
        g = rng.uniform(0.5, 1.5, c) * np.resize(np.array(gamma_signs, float), c)
        params["bn_b.gamma"] = g.astype(np.float32)
    return xnorgen.load(write_net(tmp_path, f"blk{c}", (c, *hw), layers, rng, params=params))


@pytest.mark.parametrize("c,pad_value,scale_input,gammas", [
    (64, 0, True, None), (65, 1, True, [1, -1, 0]), (33, -1, False, [-1, 0]), (130, 0, True, [0, 1, -1])])
def test_fused_equals_unfused_bit_for_bit(tmp_path, c, pad_value, scale_input, gammas):
    net = resnet_block_net(tmp_path, c, pad_value, scale_input, gammas)
    x = random_input(net, np.random.default_rng(1), batch=3)
    fused, unfused = xnorgen.build(net, fuse=True)(x), xnorgen.build(net, fuse=False)(x)
    assert np.array_equal(fused, unfused)
    want = xnorgen.reference(net, x)
    assert np.abs(fused - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


@pytest.mark.parametrize("c,pad_value,gammas", [(64, 0, [1, -1, 0]), (37, 1, None), (50, -1, [0, 1])])
def test_fused_pixel_lanes_equal_unfused(tmp_path, c, pad_value, gammas):
    """conv1 computed in pixel lanes writes the next stage's bits and A in its epilogue."""
    import dataclasses
    t = dataclasses.replace(resolve("x86-64"), pixel_lanes=16)        # the portable lanes hook
    targets = [t] + [h for h in [resolve("host")] if h.pixel_lanes]   # and the host's ISA one
    net = resnet_block_net(tmp_path, c, pad_value, True, gammas, hw=(5, 27))
    conv1 = next(lp for lp in plan_network(net, t).layers if lp.layer.name == "conv1")
    assert conv1.tiling.pixel_lanes == 16 and conv1.binarize_out
    x = random_input(net, np.random.default_rng(2), batch=2)
    unfused = xnorgen.build(net, target=t, fuse=False)(x)
    for target in targets:
        assert np.array_equal(xnorgen.build(net, target=target, fuse=True)(x), unfused), target.name


@pytest.mark.parametrize("mode,pool,relu,shape,f", [
    ("float", {"kernel": 3, "stride": 2, "padding": 1, "then": "gap"}, True, (3, 40, 36), 20),   # the ResNet stem's
    ("float", {"kernel": 2}, False, (4, 9, 18), 16),
    ("bwn", {"kernel": [3, 2], "stride": [1, 2], "padding": [1, 0]}, True, (5, 8, 11), 7),
    ("float", {"kernel": 3, "stride": 1, "padding": 1}, True, (2, 6, 34), 33),
])
def test_maxpool_folds_into_the_conv_epilogue(tmp_path, mode, pool, relu, shape, f):
    """conv -> batchnorm (-> relu) -> maxpool on a target with fold_pool: the conv writes the
    pooled tensor from a ring of its last rows (arena scratch); bit-identical to the unfused
    library on the host and the portable target, and the conv's full output is never stored."""
    then = pool.pop("then", None)
    layers = [{"name": "conv", "type": "conv2d", "mode": mode, "filters": f, "kernel": 3, "padding": 1},
              {"name": "bn", "type": "batchnorm"}] + ([{"name": "act", "type": "relu"}] if relu else []) \
        + [{"name": "pool", "type": "maxpool", **pool}] \
        + ([{"name": "gap", "type": "avgpool", "global": True}] if then else [])
    net = xnorgen.load(write_net(tmp_path, "cp", shape, layers, np.random.default_rng(f)))
    x = random_input(net, np.random.default_rng(3), batch=2)
    import dataclasses
    for name in ["x86-64", "host"]:
        t = dataclasses.replace(resolve(name), fold_pool=True)            # as cortex-m4 does; runs here
        plan = plan_network(net, t)
        conv = plan.layers[0]
        assert conv.epilogue[-1] == "pool" and "pool_ring" in conv.scratch and conv.output == plan.storage["pool"]
        assert plan.arena_size < plan_network(net, t, fuse=False).arena_size
        assert plan_network(net, resolve(name)).layers[0].epilogue[-1] != "pool"   # off unless asked for
        fused, unfused = xnorgen.build(net, t)(x), xnorgen.build(net, t, fuse=False)(x)
        assert np.array_equal(fused, unfused), name
        assert np.array_equal(run_plan(plan, x[0]).output, fused[0]), name       # the simulator follows
    want = xnorgen.reference(net, x)
    assert np.abs(fused - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


def test_fusion_decisions_and_memory(tmp_path):
    net = resnet_block_net(tmp_path, 64)
    t = resolve("x86-64")
    fused, plain = plan_network(net, t), plan_network(net, t, fuse=False)
    assert fused.elided == {"bn_a", "bn_b", "conv1", "down"}
    lps = {lp.layer.name: lp for lp in fused.layers}
    # down runs after conv2, so it adds conv2's output in its epilogue and writes `sum` itself
    assert lps["down"].epilogue == ["sum"] and lps["sum"].folded_into == "down"
    assert lps["down"].output == fused.storage["sum"] and not plain.layers[-1].folded_into
    stages = {st.tensor: st for st in fused.binarize.values()}
    assert stages["bn_a"].readers == ["conv1", "down"] and not stages["bn_a"].in_epilogue
    assert stages["bn_b"].in_epilogue and stages["bn_b"].runs_in == "conv1"
    assert fused.arena_size < plain.arena_size
    assert not plain.elided and all(st.bn is None for st in plain.binarize.values())


def test_batchnorm_read_elsewhere_is_not_folded(tmp_path):
    layers = [{"name": "bn", "type": "batchnorm"},
              {"name": "conv", "type": "conv2d", "mode": "xnor", "filters": 4, "kernel": 3},
              {"name": "gap", "type": "avgpool", "global": True, "inputs": ["bn"]},
              {"name": "cat", "type": "add", "inputs": ["gap", "gap"]}]
    net = xnorgen.load(write_net(tmp_path, "keep", (5, 5, 5), layers), weights=False)
    plan = plan_network(net, resolve("x86-64"))
    assert "bn" not in plan.elided


@pytest.mark.parametrize("seed", range(4))
def test_random_networks_fused_equal_unfused(tmp_path, seed):
    net = xnorgen.load(random_network(tmp_path, f"f{seed}", np.random.default_rng(seed + 50), output="fc"))
    x = random_input(net, np.random.default_rng(seed), batch=2)
    assert np.array_equal(xnorgen.build(net)(x), xnorgen.build(net, fuse=False)(x))


@pytest.mark.parametrize("fuse", [True, False])
def test_input_equal_to_batchnorm_mean_binarizes_like_the_reference(tmp_path, fuse):
    """(x - mean) * scale + beta with beta = 0 is exactly 0 where x == mean, so sign = +1 as in the
    golden model; x * scale + (beta - mean * scale) would leave a rounding residue of either sign."""
    c = 65
    rng = np.random.default_rng(9)
    mean = rng.standard_normal(c).astype(np.float32) * 3
    layers = [{"name": "bn", "type": "batchnorm"},
              {"name": "conv", "type": "conv2d", "mode": "xnor", "filters": 8, "kernel": 3, "padding": 1,
               "scale_weight": False, "scale_input": False}]
    params = {"bn.mean": mean, "bn.beta": np.zeros(c, np.float32),
              "bn.gamma": rng.uniform(0.3, 3, c).astype(np.float32), "bn.var": rng.uniform(0.1, 5, c).astype(np.float32)}
    net = xnorgen.load(write_net(tmp_path, f"mean{int(fuse)}", (c, 5, 5), layers, rng, params=params))
    x = np.broadcast_to(mean[:, None, None], (c, 5, 5)).copy()
    x[:, ::2, ::2] += rng.standard_normal((c, 3, 3)).astype(np.float32)
    got = xnorgen.build(net, fuse=fuse)(x)
    assert np.array_equal(got, xnorgen.reference(net, x))


@pytest.mark.parametrize("mode", ["float", "bwn"])
def test_conv_batchnorm_relu_fold_into_the_conv_epilogue(tmp_path, mode):
    layers = [{"name": "c1", "type": "conv2d", "mode": mode, "filters": 20, "kernel": 3, "padding": 1, "bias": True},
              {"name": "bn1", "type": "batchnorm"}, {"name": "r1", "type": "relu"},
              {"name": "p1", "type": "maxpool", "kernel": 2},
              {"name": "c2", "type": "conv2d", "mode": mode, "filters": 17, "kernel": [3, 2], "stride": 2},
              {"name": "bn2", "type": "batchnorm"}]                 # folded, and it is the output
    net = xnorgen.load(write_net(tmp_path, f"epi{mode}", (3, 20, 19), layers, np.random.default_rng(4),
                                 params={"bn1.gamma": np.resize(np.float32([1, -0.5, 0]), 20)}))
    plan = plan_network(net, resolve("x86-64"))
    assert plan.elided == {"c1", "bn1", "c2"}
    assert [lp.epilogue for lp in plan.layers if lp.epilogue] == [["bn1", "r1"], ["bn2"]]
    x = random_input(net, np.random.default_rng(5), batch=2)
    fused = xnorgen.build(net)(x)
    assert np.array_equal(fused, xnorgen.build(net, fuse=False)(x))
    want = xnorgen.reference(net, x)
    assert np.abs(fused - want).max() <= 1e-4 * max(1.0, np.abs(want).max())
    sim = run_plan(plan_network(net, resolve("host")), x[0])
    assert np.array_equal(sim.output, fused[0])
