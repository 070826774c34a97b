"""Simulated kind pool: templates/kernel_pool.c.j2 (max/avg over a window; xg_pool_rows on the
interior where the target's header has it)."""
from __future__ import annotations

from collections import Counter

import numpy as np

from .conv_xnor import F32, axis_runs
from .loops import conv_taps, tap_mask, valid_taps
from xnorgen.packing import words_for
from xnorgen.plan.hooks import hook_source

from .ops import float_lanes, float_vector_lanes, loop, scaled, simd_kind

POOL_TAP = {"load_op": 1, "fmax": 1}                                   # acc = max(acc, x) or acc += x


def pool(lp, target, consts, x, run: bool):
    """kernel_pool.c.j2: in-bounds taps only; max starts at -inf, avg divides by the kernel area."""
    layer = lp.layer
    c, h, w = lp.in_shapes[0]
    _, ho, wo = lp.out_shape
    kh, kw = layer.kernel
    cols, interior = axis_runs(w, kw, layer.stride[1], layer.padding[1], wo)
    if hook_source(target, "pool_rows") in ("avx2", "avx512") and interior.sum() >= float_vector_lanes(target):
        counts = pool_vector_counts(lp, target, cols, interior)
    else:
        taps = conv_taps((h, w), layer.kernel, layer.stride, layer.padding, (ho, wo), 0)
        rows = conv_taps((h, 1), (kh, 1), (layer.stride[0], 1), (layer.padding[0], 0), (ho, 1), 0) * wo
        counts = loop(c) + loop(c * ho) + scaled({"add": 3, "compare": 2}, c * ho + c * ho * wo) + loop(c * ho * wo)
        # per tap one combine in a register; on a core without float SIMD (cortex-m4, seen in
        # objdump) the interior goes through xg_pool_rows_portable, whose running outputs live in
        # memory: per tap two loads, a compare and the flags moved over, a conditional move,
        # a store and the loop's add, move, compare and branch
        # (with fewer than 4 interior columns gcc unrolls the call and keeps them in registers)
        in_memory = float_lanes(target) == 1 and interior.sum() >= 4
        tap = Counter(load=2, compare=3, logic=2, store=1, add=2, branch=1) if in_memory else POOL_TAP
        counts += scaled(tap, c * taps) + scaled({"store": 1, "addr": 1}, c * ho * wo)
        if tuple(layer.padding) != (0, 0):          # runtime tap bounds: the ky/kx loops stay loops
            counts += loop(c * taps) + loop(c * rows)
        if layer.type == "avgpool":
            counts += scaled({"fdiv": 1}, c * ho * wo)
    if not run:
        return None, counts
    acc = np.full((c, ho, wo), -np.inf if layer.type == "maxpool" else 0.0, dtype=F32)
    for m, rows, cols in window_taps(layer, h, w, ho, wo):
        v = x[:, rows, cols]
        new = np.where(v > acc, v, acc) if layer.type == "maxpool" else acc + v
        acc = np.where(m[None], new, acc)
    return (acc / F32(kh * kw) if layer.type == "avgpool" else acc), counts


def window_taps(layer, h: int, w: int, ho: int, wo: int):
    """Per tap (ky, kx) of a pool's window, in the kernels' order: (in bounds [ho, wo], input
    rows [ho, 1], input columns [1, wo]), the indices clipped where out of bounds."""
    kh, kw = layer.kernel
    yi, yin = tap_mask(h, kh, layer.stride[0], layer.padding[0], ho)
    xi, xin = tap_mask(w, kw, layer.stride[1], layer.padding[1], wo)
    for ky in range(kh):
        for kx in range(kw):
            yield (yin[:, ky, None] & xin[None, :, kx], np.clip(yi[:, ky], 0, h - 1)[:, None],
                   np.clip(xi[:, kx], 0, w - 1)[None, :])


def pool_vector_counts(lp, target, cols, interior) -> Counter:
    """kernel_pool.c.j2 through the AVX-512 or AVX2 xg_pool_rows (rows of at least one vector,
    16 or 8 outputs; shorter ones take the portable loop): a row's interior columns [OX0, OX1) in
    vectors (the last one masked), each kept in a register over the window. Per in-bounds
    (ky, kx) and vector: its inputs (stride 1: a load; 2: two loads and a permute, on AVX2 two
    shuffles, masked loads in the row's last vector only; else a gather, a load per lane) and
    one max or add; per vector a store (and a divide for an average); the border columns one
    output at a time. Elsewhere the portable xg_pool_rows is counted per tap (pool's recipe in
    `pool`). cols, interior: sim.conv_xnor.axis_runs along x."""
    layer = lp.layer
    c, h, _ = lp.in_shapes[0]
    _, ho, wo = lp.out_shape
    kh, kw = layer.kernel
    sw = layer.stride[1]
    rows = valid_taps(h, kh, layer.stride[0], layer.padding[0], ho)     # in-bounds (oy, ky) pairs
    n_int = int(interior.sum())
    lanes = float_vector_lanes(target)
    nv = -(-n_int // lanes)
    border_taps = int(cols[~interior].sum())
    if sw > 2:
        per_vec_tap = Counter(load=lanes, fmax=1)
    elif hook_source(target, "pool_rows") == "avx2":
        per_vec_tap = Counter(vload=sw, vshuffle=2 * (sw - 1), fmax=1)
    else:
        per_vec_tap = Counter(vload=sw, vshuffle=sw - 1, fmax=1)
    counts = loop(c) + loop(c * ho) + scaled({"add": 3, "compare": 2}, c * ho)
    counts += scaled({"vlogic": 1, "store": 1, "fdiv": int(layer.type == "avgpool")}, c * ho * nv)
    counts += scaled(per_vec_tap, c * rows * kw * nv) + loop(c * rows * kw * nv)
    if hook_source(target, "pool_rows") == "avx2" and sw == 2:     # the row's last vector: vmaskmovps, a load and a vector uop
        counts += scaled({"vlogic": 2}, c * rows * kw)
    counts += scaled({"add": 3, "compare": 2, "store": 1, "addr": 1, "fdiv": int(layer.type == "avgpool")},
                     c * ho * (wo - n_int))
    counts += scaled(POOL_TAP, c * rows * border_taps) + loop(c * rows * border_taps)
    return counts


BIT_TAP = {"load": 1, "logic": 2, "add": 2, "addr": 1}              # all &= v; any |= v; its address
BIT_WORD = {"load": 1, "logic": 3, "store": 1, "addr": 1}              # (all & ~neg) | (any & neg)


def bit_pool(lp, target, neg, words, run: bool):
    """kernel_pool.c.j2 `bits`: a max pool on the packed signs of a fused epilogue (kinds/pool.py).
    words: the unpooled stage words [H*W, WPP]; neg: the channels whose batchnorm scale is < 0.
    Per output word the AND and the OR of its in-bounds taps, combined by neg.
    Counts, read from qemu -icount on the M4 and the qemu-aarch64 block log (40..96 channels;
    2x2/2, 3x3/3 and 3x3/2 padded 1), are rough: this kernel is a few hundred to a few thousand
    instructions against the conv's hundreds of thousands, so its recipe was not tuned further.
    Without padding and with few taps (M4 at most 4, armv8 at most 9) gcc unrolls the window,
    the first tap starting both accumulators: per word its taps' loads, 2 (taps - 1) ANDs and
    ORs, the combine and the store; on armv8 for two pixels' words at once, in vectors.
    Otherwise each tap is a loop iteration with its address (about 10 instructions on the M4).
    Predicted/measured: M4 1.20, 0.99, 1.14; armv8 1.53, 1.29, 1.01 (the three pools above)."""
    layer = lp.layer
    _, h, w = lp.in_shapes[0]
    _, ho, wo = lp.out_shape
    kh, kw = layer.kernel
    wpp = words_for(lp.in_shapes[0][0], target.word_bits)
    outs = ho * wo * wpp
    counts = loop(ho) + loop(ho * wo)
    neon = simd_kind(target) == "neon"
    if tuple(layer.padding) == (0, 0) and kh * kw <= (9 if neon else 4):
        per = Counter(load=kh * kw, logic=2 * (kh * kw - 1)) + Counter(BIT_WORD)
        counts += scaled(per, -(-outs // 2) if neon else outs)     # neon: two pixels' words per vector
    else:
        taps = conv_taps((h, w), layer.kernel, layer.stride, layer.padding, (ho, wo), 0)
        rows = conv_taps((h, 1), (kh, 1), (layer.stride[0], 1), (layer.padding[0], 0), (ho, 1), 0) * wo
        counts += scaled({"add": 3, "compare": 2}, ho + ho * wo) + loop(outs) + scaled(BIT_WORD, outs)
        counts += scaled(BIT_TAP, taps * wpp) + loop(taps * wpp) + loop(rows * wpp)
    if not run:
        return None, counts
    grid = words.reshape(h, w, wpp)
    all_ = np.full((ho, wo, wpp), np.iinfo(words.dtype).max, dtype=words.dtype)
    any_ = np.zeros((ho, wo, wpp), dtype=words.dtype)
    for m, rows, cols in window_taps(layer, h, w, ho, wo):
        v = grid[rows, cols]
        all_ = np.where(m[..., None], all_ & v, all_)
        any_ = np.where(m[..., None], any_ | v, any_)
    neg = np.asarray(neg, dtype=words.dtype)
    return ((all_ & ~neg) | (any_ & neg)).reshape(ho * wo, wpp), counts
