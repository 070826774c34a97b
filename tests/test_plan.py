"""The plan: arena exactness (no live overlap, first-fit beats no reuse), packing, manifest."""
import json

import numpy as np
import pytest

import xnorgen
from netgen import random_network, write_net
from xnorgen.api import compile_network
from xnorgen.kinds import layer_consts, weight_bytes
from xnorgen.plan.core import ALIGN, plan_network, sum_of_buffers
from xnorgen.target import resolve


@pytest.mark.parametrize("seed", range(10))
def test_live_buffers_never_overlap(tmp_path, seed):
    net = xnorgen.load(random_network(tmp_path, f"n{seed}", np.random.default_rng(seed)), weights=False)
    plan = plan_network(net, resolve("x86-64"))
    bufs = list(plan.buffers.values())
    for b in bufs:
        assert b.offset % ALIGN == 0 and b.offset + b.nbytes <= plan.arena_size
    for i, a in enumerate(bufs):
        for b in bufs[i + 1:]:
            live_together = a.first <= b.last and b.first <= a.last
            disjoint = a.offset + a.nbytes <= b.offset or b.offset + b.nbytes <= a.offset
            assert disjoint or not live_together, (a, b)


def test_first_fit_reuses_memory(tmp_path):
    layers = [{"name": f"c{i}", "type": "conv2d", "filters": 8, "kernel": 3, "padding": 1} for i in range(6)]
    net = xnorgen.load(write_net(tmp_path, "chain", (8, 16, 16), layers), weights=False)
    plan = plan_network(net, resolve("x86-64"))
    one = 8 * 16 * 16 * 4
    assert sum_of_buffers(plan) == 5 * one          # c5 writes to the caller's output
    assert plan.arena_size == 2 * one                # ping-pong: the real peak
    assert plan.arena_size < sum_of_buffers(plan)


def test_flatten_is_a_view_and_residual_extends_lifetime(tmp_path):
    layers = [{"name": "a", "type": "relu"}, {"name": "b", "type": "relu"}, {"name": "c", "type": "relu"},
              {"name": "s", "type": "add", "inputs": ["a", "c"]}, {"name": "f", "type": "flatten"},
              {"name": "o", "type": "relu"}]
    net = xnorgen.load(write_net(tmp_path, "res", (2, 3, 3), layers), weights=False)
    plan = plan_network(net, resolve("x86-64"))
    assert plan.storage["f"] == plan.storage["s"]
    assert plan.buffers["a"].last == 3                # a lives until the add
    assert "f" not in plan.buffers


def test_packing_decisions(tmp_path):
    layers = [{"name": "x", "type": "conv2d", "mode": "xnor", "filters": 4, "kernel": 3}]
    net = xnorgen.load(write_net(tmp_path, "p", (130, 5, 5), layers), weights=False)
    plan = plan_network(net, resolve("x86-64"))
    lp = plan.layers[0]
    assert lp.packing.words_per_pixel == 3 and lp.packing.tail_bits == 2
    assert set(lp.scratch) == {"kmap"}
    st = plan.binarize[lp.binarize_in]
    assert plan.buffers[st.packed].nbytes == 5 * 5 * 3 * 8 and plan.buffers[st.amap].nbytes == 5 * 5 * 4


@pytest.mark.parametrize("seed", range(4))
def test_weight_bytes_match_emitted_constants(tmp_path, seed):
    net = xnorgen.load(random_network(tmp_path, f"w{seed}", np.random.default_rng(seed)))
    t = resolve("x86-64")
    plan = plan_network(net, t)
    for lp in plan.layers:
        wb = weight_bytes(lp, t)
        emitted = sum(c.values.size * c.itemsize(t) for c in layer_consts(lp, t, plan))
        assert (wb or {}).get("packed", 0) == emitted, lp.layer.name


def test_manifest_records_the_plan(tmp_path):
    net = xnorgen.load(random_network(tmp_path, "m", np.random.default_rng(3)))
    plan, files = compile_network(net, "x86-64")
    m = json.loads(files["manifest.json"])
    assert m["schema_version"] == 1 and m["arena_size"] == plan.arena_size
    assert f"#define M_ARENA_SIZE {plan.arena_size}" in files["m.h"]
    conv = next(lay for lay in m["layers"] if lay["name"] == "b2")
    assert conv["packing"]["word_bits"] == 64 and conv["tiling"]["filter_block"] >= 4
    assert conv["predicted"]["cycles"] > 0
    assert m["predicted_cycles"] == sum(lay["predicted"]["cycles"] for lay in m["layers"])
    assert conv["weight_bytes"]["packed"] < conv["weight_bytes"]["float32"]


@pytest.mark.parametrize("target, ffb, pb", [("x86-64", 4, 8), ("x86-64-avx2", 16, 4), ("x86-64-avx512", 16, 8)])
def test_float_blocks_keep_eight_accumulator_vectors(tmp_path, target, ffb, pb):
    """A float conv's filter block (target float_block, else one vector) times its pixel block
    stays at 8 accumulator vectors: AVX2's two-vector blocks take 4 pixels, one-vector blocks 8.
    (Stride 3: no pixel lanes on avx512.)"""
    layer = {"name": "conv", "type": "conv2d", "filters": 20, "kernel": 3, "padding": 1, "stride": 3}
    net = xnorgen.load(write_net(tmp_path, "fp", (3, 12, 60), [layer], np.random.default_rng(0)))
    tiling = plan_network(net, resolve(target)).layers[0].tiling
    assert (tiling.filter_block, tiling.pixel_block) == (ffb, pb)


@pytest.mark.parametrize("hw, expanded", [((16, 8), True), ((10, 12), False)])
def test_bwn_masks_expand_only_on_maps_that_repay_it(tmp_path, hw, expanded):
    """target.bwn_expand applies from MIN_EXPAND_PIXELS (128) outputs per filter; the expansion
    buffer (one block of +-1.0 floats) is planned in the arena only then."""
    import dataclasses
    from xnorgen.plan.tiling import MIN_EXPAND_PIXELS
    t = dataclasses.replace(resolve("x86-64"), bwn_expand=True)
    layer = {"name": "conv", "type": "conv2d", "mode": "bwn", "filters": 8, "kernel": 3, "padding": 1}
    net = xnorgen.load(write_net(tmp_path, "bw", (5, *hw), [layer], np.random.default_rng(1)))
    lp = plan_network(net, t).layers[0]
    assert (hw[0] * hw[1] >= MIN_EXPAND_PIXELS) == expanded
    assert bool(lp.tiling.bwn_expand) == expanded == ("bwn_weights" in lp.scratch)


def test_check_plan_names_the_pass_that_broke_the_ir(tmp_path):
    """The IR check run after every pass is not vacuous: overlapping live buffers, a missing
    kind or an unplaced buffer are reported with the pass they follow."""
    import dataclasses

    import pytest
    from xnorgen.plan.check import check_plan
    net = xnorgen.load(random_network(tmp_path, "ck", np.random.default_rng(5)))
    plan = plan_network(net, resolve("x86-64"))
    check_plan(plan, after="plan_arena")                        # the real plan holds
    live = [b for b in plan.buffers.values() if b.nbytes]
    a, b = next((a, b) for a in live for b in live if a is not b and a.first <= b.last and b.first <= a.last)
    saved = b.offset
    b.offset = a.offset
    with pytest.raises(AssertionError, match="after pass plan_arena: buffers .* overlap"):
        check_plan(plan, after="plan_arena")
    b.offset = saved
    plan.layers[0] = dataclasses.replace(plan.layers[0], kind="")
    with pytest.raises(AssertionError, match="after pass assign_kinds: a layer has no kind"):
        check_plan(plan, after="assign_kinds")
