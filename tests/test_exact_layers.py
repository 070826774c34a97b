"""Generated C vs the golden model, one layer at a time.

With scale_weight, scale_input and bias off, an xnor layer's output IS the integer
XNOR-popcount core, so it is compared with equality. Scaled variants are compared
to the contract's tolerance.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import xnorgen
from netgen import with_zeros, write_net, xnor_conv_net
from xnorgen.reference import binary_conv_core, sign


# (C, H, W, filters, kernel, stride, padding, pad_value): every case the core issue names.
CASES = [
    (1, 5, 5, 3, 3, 1, 1, 0),
    (63, 6, 7, 5, 3, 1, 1, 0),
    (64, 6, 6, 4, 3, 2, 1, 1),
    (65, 7, 5, 3, 3, 1, "same", -1),
    (130, 5, 6, 2, 3, 2, 0, 0),
    (65, 6, 6, 3, 1, 1, 0, 0),
    (3, 8, 9, 4, 5, 1, 2, 0),
    (17, 7, 8, 5, [3, 2], 2, [1, 0], 1),
    (64, 2, 3, 3, 5, 1, 2, 0),          # kernel wider than the input
    (33, 3, 2, 4, [3, 5], 1, [1, 2], -1),    # kernel wider than the input, pad_value -1
    (5, 4, 4, 2, 3, 2, "valid", 1),
    (130, 4, 4, 3, [2, 3], [1, 2], [0, 1], 0),
    (1, 1, 1, 1, 1, 1, [0, 2], 0),      # outputs whose window lies wholly in the padding
    (3, 2, 1, 2, 1, 1, [2, 1], 1),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "c{}_{}x{}_k{}_s{}_p{}_pv{}".format(c[0], c[1], c[2], *c[4:]))
def test_xnor_conv_integer_core_is_exact(tmp_path, case):
    c, h, w, f, kernel, stride, padding, pad_value = case
    net = xnor_conv_net(tmp_path, c, h, w, f, kernel, stride, padding, pad_value, seed=c * 7 + h)
    x = with_zeros((4, c, h, w), np.random.default_rng(c))
    got = xnorgen.build(net)(x)
    want = np.stack([binary_conv_core(net.layer("conv"), s) for s in x])
    assert got.shape == want.shape
    assert np.array_equal(got, want), f"max diff {np.abs(got - want).max()}"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(c=st.sampled_from([1, 2, 31, 63, 64, 65, 127, 130]), h=st.integers(1, 7), w=st.integers(1, 7),
       f=st.integers(1, 6), kh=st.integers(1, 5), kw=st.integers(1, 5), sh=st.integers(1, 3),
       sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2), pad_value=st.sampled_from([0, 1, -1]),
       seed=st.integers(0, 10**6))
def test_xnor_conv_random_shapes_exact(tmp_path, c, h, w, f, kh, kw, sh, sw, ph, pw, pad_value, seed):
    from hypothesis import assume
    assume(h + 2 * ph >= kh and w + 2 * pw >= kw)
    net = xnor_conv_net(tmp_path, c, h, w, f, [kh, kw], [sh, sw], [ph, pw], pad_value, seed)
    x = with_zeros((2, c, h, w), np.random.default_rng(seed))
    got = xnorgen.build(net)(x)
    want = np.stack([binary_conv_core(net.layer("conv"), s) for s in x])
    assert np.array_equal(got, want)


# Pixel lanes (one word per pixel, stride 1 along x, at least XG_PX = 16 interior columns).
# Interiors: 16 (one group), 21 and 22 (a group, then a half group moved left), 26 (two full
# groups, the second moved left); rows partly or wholly in padding, filters not a multiple of the
# block, asymmetric kernels, all three pad values. (C, H, W, filters, kernel, stride, padding, pad_value)
LANE_CASES = [
    (64, 3, 18, 5, 3, 1, 1, 0),
    (63, 4, 23, 20, [3, 2], [2, 1], [1, 1], 1),
    (1, 5, 28, 17, 3, 1, 1, -1),
    (40, 2, 26, 16, 5, 1, [2, 2], 0),
    (7, 6, 27, 3, [2, 5], 1, [3, 2], 1),
    (30, 3, 40, 16, 1, 2, 0, 0),                  # 1x1 stride 2 (a ResNet shortcut): words 2 apart
    (64, 2, 37, 9, [2, 1], 2, [1, 0], 1),
]


def _target_with(kind, field, value=16):
    """The target named kind ("host" or a name) if it runs here and has `field` (a kernel-shape
    option, e.g. pixel_lanes) on, else skip; kind "portable": its portable C hooks on any
    machine, x86-64 with the option set to value."""
    import dataclasses
    from xnorgen.target import resolve, runs_here
    if kind == "portable":
        return dataclasses.replace(resolve("x86-64"), **{field: value})
    t = resolve(kind)
    if not runs_here(t):
        pytest.skip(f"{t.name} does not run on this machine")
    if not getattr(t, field):
        pytest.skip(f"target {t.name} has no {field}")
    return t


def _lanes_target(kind):
    return _target_with(kind, "pixel_lanes")


# Tile stores (target.store_tile: 16 outputs x the block's filters, stored transposed) on the
# per-pixel path (at least MIN_TILE_PIXELS = 128 outputs per filter): more than 12 filters so
# every column of the transpose is checked, partial tiles and partial filter blocks, strides, pad
# values. (C, H, W, filters, kernel, stride, padding, pad_value)
TILE_CASES = [
    (70, 11, 13, 20, 3, 1, 1, 0),              # 143 outputs: 8 tiles and 15; a block and 4 filters
    (64, 8, 16, 16, 3, 1, 1, 1),               # exactly 8 tiles, one block
    (129, 24, 23, 33, [3, 2], 2, [1, 0], -1),  # stride 2: 12 x 11 outputs, three blocks (the last 1 filter)
    (3, 13, 12, 32, 5, 1, 2, 0),               # 156 outputs, two blocks
]


def _tile_target(kind):
    return _target_with(kind, "store_tile")


# (kind, option): the host's ISA hooks and their portable C; avx2 has its own tile store.
KERNEL_PATHS = [(k, "pixel_lanes") for k in ("host", "portable")] + \
    [(k, "store_tile") for k in ("host", "x86-64-avx2", "portable")]


@pytest.mark.parametrize("kind,option,case", [(k, o, c) for k, o in KERNEL_PATHS
                                              for c in (LANE_CASES if o == "pixel_lanes" else TILE_CASES)],
                         ids=lambda v: f"c{v[0]}_{v[1]}x{v[2]}_f{v[3]}" if isinstance(v, tuple) else v)
def test_xnor_conv_kernel_path_exact(tmp_path, option, case, kind):
    """The ISA hooks (host) and their portable C of one kernel path, where the plan takes it:
    equal to the golden model's integer core."""
    from xnorgen.plan.core import plan_network
    c, h, w, f, kernel, stride, padding, pad_value = case
    t = _target_with(kind, option)
    net = xnor_conv_net(tmp_path, c, h, w, f, kernel, stride, padding, pad_value, seed=w * 5 + c)
    assert plan_network(net, t).layers[0].tiling.__dict__[option] == 16     # the path under test is taken
    x = with_zeros((2, c, h, w), np.random.default_rng(w))
    want = np.stack([binary_conv_core(net.layer("conv"), s) for s in x])
    assert np.array_equal(xnorgen.build(net, target=t)(x), want)


# Few output pixels per block of weights (tiling.next_block_prefetch: each pixel prefetches its
# lines of the next block): partial blocks, pad values, strides. (C, H, W, filters, kernel, stride,
# padding, pad_value)
PREFETCH_CASES = [
    (300, 2, 2, 20, 3, 1, 1, 0),               # 4 pixels, 90 lines per block, a block and 4 filters
    (520, 3, 4, 33, [3, 2], 2, [1, 0], -1),    # 2 x 2 pixels, three blocks
    (257, 2, 3, 16, 3, 1, "same", 1),          # 6 pixels, one block
]


@pytest.mark.parametrize("kind", ["host", "portable"])
@pytest.mark.parametrize("case", PREFETCH_CASES, ids=lambda v: f"c{v[0]}_{v[1]}x{v[2]}_f{v[3]}")
def test_xnor_conv_next_block_prefetch_exact(tmp_path, case, kind):
    """The per-pixel path with prefetches of the next block's weights (a hint: the last block's
    point past the weights), and without them (portable: no prefetch instruction): exact."""
    from xnorgen.plan.core import plan_network
    c, h, w, f, kernel, stride, padding, pad_value = case
    t = _target_with(kind, "block_prefetch", 1)   # portable: 4-filter blocks, so 1 line per pixel
    net = xnor_conv_net(tmp_path, c, h, w, f, kernel, stride, padding, pad_value, seed=c + w)
    assert plan_network(net, t).layers[0].tiling.next_block_prefetch > 0   # the path under test is taken
    x = with_zeros((2, c, h, w), np.random.default_rng(c))
    want = np.stack([binary_conv_core(net.layer("conv"), s) for s in x])
    assert np.array_equal(xnorgen.build(net, target=t)(x), want)


@pytest.mark.parametrize("kind", ["host", "x86-64-avx2", "portable"])
def test_xnor_conv_tile_store_with_residual_add_is_bit_exact(tmp_path, kind):
    """A folded residual add goes through the tile store too (v + res per output): equal bit for
    bit to the simulator's float32 model, scaled (alpha, K, bias) on."""
    from xnorgen.plan.core import plan_network
    from xnorgen.sim.machine import run_plan
    t = _tile_target(kind)
    layers = [{"name": "conv", "type": "conv2d", "mode": "xnor", "filters": 20, "kernel": 3, "padding": 1,
               "bias": True}, {"name": "add", "type": "add", "inputs": ["conv", "input"]}]
    net = xnorgen.load(write_net(tmp_path, "res", (20, 12, 11), layers, np.random.default_rng(6)))
    plan = plan_network(net, t)
    assert plan.layers[0].tiling.store_tile == 16 and plan.layers[0].epilogue == ["add"]
    x = np.random.default_rng(7).standard_normal((1, 20, 12, 11)).astype(np.float32)
    assert np.array_equal(xnorgen.build(net, target=t)(x)[0], run_plan(plan, x[0]).output)


@pytest.mark.parametrize("kind", ["host", "x86-64-avx2", "portable"])
@pytest.mark.parametrize("f", [20, 32])
def test_xnor_conv_tile_into_fused_binarize_is_bit_exact(tmp_path, kind, f):
    """An xnor conv whose epilogue binarizes for the next xnor conv (batchnorm + sign, and A for
    its K) adds |y| to A through the tile (filters in order): the whole network equals the
    simulator's float32 model bit for bit."""
    from xnorgen.plan.core import plan_network
    from xnorgen.sim.machine import run_plan
    t = _tile_target(kind)
    layers = [{"name": "c1", "type": "conv2d", "mode": "xnor", "filters": f, "kernel": 3, "padding": 1},
              {"name": "bn", "type": "batchnorm"},
              {"name": "c2", "type": "conv2d", "mode": "xnor", "filters": 5, "kernel": 3, "padding": 1}]
    net = xnorgen.load(write_net(tmp_path, "fz", (70, 12, 11), layers, np.random.default_rng(f)))
    plan = plan_network(net, t)
    assert plan.layers[0].binarize_out and plan.layers[0].tiling.store_tile == 16
    x = np.random.default_rng(8).standard_normal((1, 70, 12, 11)).astype(np.float32)
    assert np.array_equal(xnorgen.build(net, target=t)(x)[0], run_plan(plan, x[0]).output)


@pytest.mark.parametrize("target", ["host", "x86-64"])
@pytest.mark.parametrize("hw,kernel,stride,padding", [((8, 8), [3, 1], 1, [1, 0]), ((8, 10), [3, 1], 1, [1, 0]),
                                                      ((9, 8), 3, 1, 1), ((5, 4), 5, 1, 3),
                                                      ((7, 11), [2, 5], [2, 1], [0, 2]), ((21, 20), 3, 2, 1)])
def test_k_map_is_bit_exact(tmp_path, target, hw, kernel, stride, padding):
    """K (xg_box_mean) on the target's compiler flags against the simulator's float32 sums, which
    add each output's taps in the same order: equal bit for bit (a gcc 12 AVX-512 miscompile of
    the interior loop was caught here; it only showed with A and K in one arena)."""
    from xnorgen.plan.core import plan_network
    from xnorgen.sim.machine import run_plan
    from xnorgen.target import resolve
    layer = {"name": "conv", "type": "conv2d", "mode": "xnor", "filters": 5, "kernel": kernel, "stride": stride,
             "padding": padding, "scale_weight": False, "scale_input": True}
    net = xnorgen.load(write_net(tmp_path, "k", (3, *hw), [layer], np.random.default_rng(4)))
    x = np.random.default_rng(5).standard_normal((1, 3, *hw)).astype(np.float32)
    got = xnorgen.build(net, target=target)(x)[0]
    assert np.array_equal(got, run_plan(plan_network(net, resolve(target)), x[0]).output)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(c=st.integers(1, 64), h=st.integers(1, 5), w=st.integers(16, 40), f=st.integers(1, 40),
       kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 2), pw=st.integers(0, 2),
       ph=st.integers(0, 2), pad_value=st.sampled_from([0, 1, -1]), seed=st.integers(0, 10**6))
def test_xnor_conv_pixel_lanes_random_shapes(tmp_path, c, h, w, f, kh, kw, sh, pw, ph, pad_value, seed):
    """Random shapes on the host's lanes path where the plan takes it (one word per pixel, stride 1):
    equal to the golden model's integer core."""
    from hypothesis import assume
    from xnorgen.plan.core import plan_network
    assume(h + 2 * ph >= kh and w + 2 * pw >= kw)
    t = _lanes_target("host")
    net = xnor_conv_net(tmp_path, c, h, w, f, [kh, kw], [sh, 1], [ph, pw], pad_value, seed)
    assume(plan_network(net, t).layers[0].tiling.pixel_lanes)
    x = with_zeros((2, c, h, w), np.random.default_rng(seed))
    want = np.stack([binary_conv_core(net.layer("conv"), s) for s in x])
    assert np.array_equal(xnorgen.build(net, target=t)(x), want)


# Float convs in pixel lanes (16 outputs per vector, 16 filters per block): strides 1 and 2, a
# 7x7 stem-like layer, groups at both borders and in the interior, filters not a multiple of
# 16, windows partly in padding. (C, H, W, filters, kernel, stride, padding)
FLOAT_LANE_CASES = [
    (3, 9, 40, 20, 7, 2, 3),
    (5, 6, 33, 16, 3, 1, 1),
    (2, 5, 35, 7, [3, 5], [1, 2], [1, 2]),
    (16, 4, 16, 33, [2, 3], 1, [0, 1]),
    (4, 7, 37, 16, 3, 2, 0),               # split rows without padding, odd width
]


def _float_lanes_targets():
    import dataclasses
    from xnorgen.target import resolve
    portable = dataclasses.replace(resolve("x86-64"), pixel_lanes=16, vector_bits=512, name="x86-64-lanes")
    host = resolve("host")
    return [portable] + ([host] if host.pixel_lanes else [])


@pytest.mark.parametrize("case", FLOAT_LANE_CASES, ids=lambda c: f"c{c[0]}_{c[1]}x{c[2]}_f{c[3]}")
def test_float_conv_pixel_lanes_bit_exact(tmp_path, case):
    """The lanes path (xg_macc_lanes: the ISA hook on the host, the portable one on x86-64 with
    lanes switched on) equals the simulator's float32 model bit for bit, batchnorm and relu folded
    into its epilogue, and the golden model to float tolerance."""
    from xnorgen.plan.core import plan_network
    from xnorgen.sim.machine import run_plan
    c, h, w, f, kernel, stride, padding = case
    layers = [{"name": "conv", "type": "conv2d", "filters": f, "kernel": kernel, "stride": stride,
               "padding": padding, "bias": f % 2 == 0}, {"name": "bn", "type": "batchnorm"}, {"name": "act", "type": "relu"}]
    net = xnorgen.load(write_net(tmp_path, "fl", (c, h, w), layers, np.random.default_rng(w)))
    x = np.random.default_rng(h).standard_normal((1, c, h, w)).astype(np.float32)
    want = xnorgen.reference(net, x)[0]
    for t in _float_lanes_targets():
        plan = plan_network(net, t)
        assert plan.layers[0].tiling.pixel_lanes == 16 and plan.layers[0].epilogue == ["bn", "act"], t.name
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        sw = stride if isinstance(stride, int) else stride[1]
        padded = [c, h + 2 * ph, w + 2 * pw] if ph or pw or sw == 2 else None   # every window read whole from it
        tiling = plan.layers[0].tiling
        assert tiling.padded_input == padded and not tiling.border_groups and tiling.split_columns == (sw == 2)
        got = xnorgen.build(net, target=t)(x)[0]
        assert np.array_equal(got, run_plan(plan, x[0]).output), t.name
        assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max()), t.name


@pytest.mark.parametrize("pad_value", [0, 1, -1])
def test_xnor_conv_scaled_matches_reference(tmp_path, pad_value):
    net = xnor_conv_net(tmp_path, 65, 6, 7, 9, [3, 2], 1, 1, pad_value, seed=3, scaled=True)
    x = np.random.default_rng(5).standard_normal((3, 65, 6, 7))
    got, want = xnorgen.build(net)(x), xnorgen.reference(net, x)
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


@pytest.mark.parametrize("n", [1, 63, 64, 65, 200])
def test_xnor_dense_integer_core_is_exact(tmp_path, n):
    layer = {"name": "fc", "type": "dense", "mode": "xnor", "units": 37, "scale_weight": False, "scale_input": False}
    weight = with_zeros((37, n), np.random.default_rng(n + 2))
    net = xnorgen.load(write_net(tmp_path, "d", (n,), [layer], np.random.default_rng(n), {"fc.weight": weight}))
    x = with_zeros((5, n), np.random.default_rng(n + 1))
    want = np.stack([sign(net.layer("fc").params["weight"]) @ sign(s) for s in x])
    assert np.array_equal(xnorgen.build(net)(x), want)


@pytest.mark.parametrize("kind", ["host", "portable"])
@pytest.mark.parametrize("n,units", [(1000, 37), (4097, 20), (640, 100)])
def test_xnor_dense_weight_stream_is_exact(tmp_path, n, units, kind):
    """The prefetching weight stream (target.stream_prefetch: xg_xor_popcount_stream) and its
    portable C, on partial words and partial unit blocks: equal to the integer core."""
    from xnorgen.plan.core import plan_network
    t = _target_with(kind, "stream_prefetch")
    layer = {"name": "fc", "type": "dense", "mode": "xnor", "units": units, "scale_weight": False,
             "scale_input": False}
    weight = with_zeros((units, n), np.random.default_rng(n + 2))
    net = xnorgen.load(write_net(tmp_path, "d", (n,), [layer], np.random.default_rng(n), {"fc.weight": weight}))
    assert plan_network(net, t).layers[0].tiling.prefetch_bytes > 0     # the path under test is taken
    x = with_zeros((3, n), np.random.default_rng(n + 1))
    want = np.stack([sign(net.layer("fc").params["weight"]) @ sign(s) for s in x])
    assert np.array_equal(xnorgen.build(net, target=t)(x), want)


@pytest.mark.parametrize("mode,scaled", [("bwn", False), ("bwn", True), ("xnor", True), ("float", False)])
def test_dense_modes_match_reference(tmp_path, mode, scaled):
    layer = {"name": "fc", "type": "dense", "mode": mode, "units": 21, "bias": scaled,
             "scale_weight": scaled, "scale_input": scaled}
    net = xnorgen.load(write_net(tmp_path, "d", (3, 5, 9), [layer], np.random.default_rng(7)))
    x = np.random.default_rng(8).standard_normal((4, 3, 5, 9))
    got, want = xnorgen.build(net)(x), xnorgen.reference(net, x)
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


@pytest.mark.parametrize("mode", ["bwn", "float"])
@pytest.mark.parametrize("pad_value", [0, 1, -1])
def test_real_input_conv_matches_reference(tmp_path, mode, pad_value):
    layer = {"name": "conv", "type": "conv2d", "mode": mode, "filters": 5, "kernel": [3, 2], "stride": [2, 1],
             "padding": [1, 2], "pad_value": pad_value, "bias": True}
    net = xnorgen.load(write_net(tmp_path, "r", (65, 5, 4), [layer], np.random.default_rng(9)))
    x = np.random.default_rng(10).standard_normal((3, 65, 5, 4))
    got, want = xnorgen.build(net)(x), xnorgen.reference(net, x)
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


@pytest.mark.parametrize("layer", [
    {"type": "maxpool", "kernel": 3, "stride": 2, "padding": 1},
    {"type": "avgpool", "kernel": [2, 3], "stride": 1, "padding": [1, 1]},
    {"type": "maxpool", "global": True},
    {"type": "avgpool", "global": True},
    {"type": "batchnorm"}, {"type": "relu"}, {"type": "sign"}, {"type": "softmax"}, {"type": "flatten"},
], ids=lambda d: "-".join(str(v) for v in d.values()))
def test_float_layers_match_reference(tmp_path, layer):
    net = xnorgen.load(write_net(tmp_path, "f", (6, 5, 7), [{"name": "l", **layer}], np.random.default_rng(11)))
    x = with_zeros((3, 6, 5, 7), np.random.default_rng(12))
    got, want = xnorgen.build(net)(x), xnorgen.reference(net, x)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(op=st.sampled_from(["maxpool", "avgpool"]), h=st.integers(1, 9), w=st.integers(1, 9),
       kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3),
       ph=st.integers(0, 3), pw=st.integers(0, 3), seed=st.integers(0, 10**6))
def test_pools_random_windows(tmp_path, op, h, w, kh, kw, sh, sw, ph, pw, seed):
    from hypothesis import assume
    assume(ph < kh and pw < kw and h + 2 * ph >= kh and w + 2 * pw >= kw)
    layer = {"name": "p", "type": op, "kernel": [kh, kw], "stride": [sh, sw], "padding": [ph, pw]}
    net = xnorgen.load(write_net(tmp_path, f"p{seed}", (3, h, w), [layer], np.random.default_rng(seed)))
    x = np.random.default_rng(seed).standard_normal((2, 3, h, w))
    got, want = xnorgen.build(net)(x), xnorgen.reference(net, x)
    assert np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max())
