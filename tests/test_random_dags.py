"""Random network topologies built from every layer type, generated C vs the golden model.

Each network is grown layer by layer from whatever is valid for the current tensor (conv modes,
pad values, strides, pools, batchnorm, sign/relu, residual adds to any earlier tensor of the
same shape, flatten then dense), so layers see the shapes and fan-outs the hand-written cases
do not: tensors read by several layers, adds of a tensor with itself, flatten or an add as the
output, global pools, dense on [C, H, W].
"""
import numpy as np
import pytest

import xnorgen
from netgen import random_dag_layers, write_net


@pytest.mark.parametrize("seed", range(12))
def test_random_dag_matches_reference(tmp_path, seed):
    rng = np.random.default_rng(seed + 1000)
    shape = (int(rng.choice([1, 3, 64, 65])), int(rng.integers(2, 9)), int(rng.integers(2, 9)))
    layers = random_dag_layers(rng, shape)
    net = xnorgen.load(write_net(tmp_path, f"dag{seed}", shape, layers, rng))
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    got, want = xnorgen.build(net)(x), xnorgen.reference(net, x)
    assert got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max()))
    assert np.abs(got - want).max() <= 1e-4 * scale, [ly["type"] + ":" + ly.get("mode", "") for ly in layers]
    assert np.array_equal(got, xnorgen.build(net, fuse=False)(x))
