"""Whole random networks: generated C vs the golden model to the contract's tolerance."""
import numpy as np
import pytest

import xnorgen
from netgen import random_input, random_network


def _close(got, want):
    return np.abs(got - want).max() <= 1e-4 * max(1.0, float(np.abs(want).max()))


@pytest.mark.parametrize("seed", range(8))
def test_random_network_logits(tmp_path, seed):
    rng = np.random.default_rng(seed)
    net = xnorgen.load(random_network(tmp_path, f"net{seed}", rng, output="fc"))
    x = random_input(net, rng, batch=3)
    got, want = xnorgen.build(net)(x), xnorgen.reference(net, x)
    assert got.shape == want.shape == (3, 10)
    assert _close(got, want), np.abs(got - want).max()


def test_random_network_softmax_and_single_sample(tmp_path):
    rng = np.random.default_rng(100)
    net = xnorgen.load(random_network(tmp_path, "soft", rng))
    lib = xnorgen.build(net)
    x = random_input(net, rng)
    got = lib(x)
    assert got.shape == (10,)
    assert _close(got, xnorgen.reference(net, x))
    assert abs(float(got.sum()) - 1.0) < 1e-5


def test_batch_equals_samples_and_arena_is_reused_safely(tmp_path):
    rng = np.random.default_rng(5)
    net = xnorgen.load(random_network(tmp_path, "b", rng, output="fc"))
    lib = xnorgen.build(net)
    x = random_input(net, rng, batch=4)
    batch = lib(x)
    assert np.array_equal(batch, np.stack([lib(s) for s in x]))


def test_rebuild_after_change_is_not_stale(tmp_path):
    """Same name, different weights: the content hash must give a different module."""
    from netgen import write_net
    layers = [{"name": "fc", "type": "dense", "units": 3, "bias": True}]
    net1 = xnorgen.load(write_net(tmp_path, "same", (4,), layers, np.random.default_rng(1)))
    x = np.ones(4, dtype=np.float32)
    y1 = xnorgen.build(net1)(x)
    net2 = xnorgen.load(write_net(tmp_path, "same", (4,), layers, np.random.default_rng(2)))
    y2 = xnorgen.build(net2)(x)
    assert not np.allclose(y1, y2)
    assert np.allclose(y2, xnorgen.reference(net2, x), atol=1e-5)


def test_bad_input_shape_is_a_clear_error(tmp_path):
    rng = np.random.default_rng(0)
    net = xnorgen.load(random_network(tmp_path, "s", rng, output="fc"))
    with pytest.raises(xnorgen.XnorgenError, match="expected shape"):
        xnorgen.build(net)(np.zeros((2, 3)))
