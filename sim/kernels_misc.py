"""Simulated dense, batchnorm, pooling and elementwise kernels (templates/kernel_*.c.j2).

Same contract as kernels_conv: (output or None, Counter), float32 in the C's order.
"""
from __future__ import annotations

from collections import Counter
from math import prod

import numpy as np

from .kernels_binarize import bn_float32, pack_vector
from .kernels_conv import F32, axis_runs, block_counts, stream_counts, epilogue, fma32, unblock
from .kernels_real import real_block_counts
from .loops import conv_taps, tap_mask, valid_taps
from .ops import float_lanes, float_vector_lanes, loop, scaled, simd_kind

BN_ELEM = {"load": 1, "fmul": 1, "fadd": 2, "store": 1}                # out = (in - mean[c]) * scale[c] + beta[c]
POOL_TAP = {"load_op": 1, "fmax": 1}                                   # acc = max(acc, x) or acc += x
ELEM = {"relu": {"load": 1, "fmax": 1, "store": 1}, "leaky_relu": {"load": 1, "fmul": 1, "compare": 1, "logic": 1, "store": 1}, "sign": {"load": 1, "compare": 1, "logic": 1, "store": 1},
        "add": {"load": 1, "load_op": 1, "fadd": 1, "store": 1}, "copy": {"load": 1, "store": 1}}


def dense(lp, target, consts, x, run: bool):
    """kernel_dense.c.j2: xnor (pack, beta, then unit blocks of XG_FB through xg_xor_popcount_block
    over the NW words, or xg_xor_popcount_stream where the plan prefetches) or float/bwn (one
    accumulator per unit)."""
    layer = lp.layer
    n, u = prod(lp.in_shapes[0]), layer.units
    has_alpha = layer.mode != "float" and layer.scale_weight
    has_k = layer.mode == "xnor" and layer.scale_input
    counts = loop(u) + scaled({"store": 1, "addr": 1}, u) + scaled(epilogue(has_alpha, has_k, layer.bias), u)
    if layer.mode == "xnor":
        nw = lp.packing.words_per_pixel
        packed_beta, c1 = pack_vector(x, n, nw, lp.packing.word_bits, has_k, run, target)
        nb, fb = lp.tiling.filter_blocks, lp.tiling.filter_block
        core = stream_counts(target, fb, nb, nb * nw) if lp.tiling.prefetch_bytes \
            else block_counts(target, fb, nb, nb * nw, 0, run_const=nw)
        counts += c1 + loop(nb) + scaled({"store": 1}, nb * fb) + core \
            + scaled({"load": 1, "cvt": 1, "add": 2, "compare": 1}, u)
    else:
        nb = lp.tiling.filter_blocks
        counts += loop(nb) + real_block_counts(target, lp.tiling.filter_block, layer.mode == "bwn", nb, 0, nb * n)
    if not run:
        return None, counts
    if layer.mode == "xnor":
        packed, beta = packed_beta
        w = unblock(consts["w"], lp.tiling, u, (nw,))
        out = (n - 2 * np.bitwise_count(packed[0][None, :] ^ w).sum(axis=1, dtype=np.int64)).astype(F32)
        scale2 = beta[0] if has_k else None
    else:
        out = _dense_acc(lp, consts, x.reshape(-1), n, u, target.fma)
        scale2 = None
    if has_alpha:
        out = out * consts["alpha"].astype(F32)
    if scale2 is not None:
        out = out * scale2
    if layer.bias:
        out = out + consts["bias"].astype(F32)
    return out, counts


def _dense_acc(lp, consts, x, n, u, fma: bool):
    """acc += w[i] * in[i] (or ±in[i] for bwn), sequentially over i, as float32; weights in
    unit blocks of XG_FFB ([U/FFB][N][FFB] floats, or one FFB-bit sign mask per (block, input))."""
    layer, ffb = lp.layer, lp.tiling.filter_block
    if layer.mode == "bwn":
        masks = consts["w"].astype(np.int64).reshape(-1, n)                     # [NB, N]
        bits = (masks[:, :, None] >> np.arange(ffb)[None, None, :]) & 1
        neg = np.moveaxis(bits, -1, 1).reshape(-1, n)[:u].astype(bool)
    else:
        w = unblock(consts["w"].astype(F32), lp.tiling, u, (n,))
    acc = np.zeros(u, dtype=F32)
    for i in range(n):
        if layer.mode == "bwn":
            acc = acc + np.where(neg[:, i], -x[i], x[i])
        else:
            acc = fma32(x[i], w[:, i], acc) if fma else acc + w[:, i] * x[i]
    return acc


def batchnorm(lp, target, consts, x, run: bool):
    """kernel_batchnorm.c.j2: (x - mean) * scale + beta per channel."""
    s = lp.in_shapes[0]
    c, hw = s[0], prod(s[1:])
    vec = c * -(-hw // float_lanes(target))
    counts = loop(c) + scaled(BN_ELEM, vec) + loop(vec)
    if not run:
        return None, counts
    xs = x.reshape(c, hw)
    out = bn_float32(xs, consts)
    return out.reshape(s), counts


def pool(lp, target, consts, x, run: bool):
    """kernel_pool.c.j2: in-bounds taps only; max starts at -inf, avg divides by the kernel area."""
    layer = lp.layer
    c, h, w = lp.in_shapes[0]
    _, ho, wo = lp.out_shape
    kh, kw = layer.kernel
    cols, interior = axis_runs(w, kw, layer.stride[1], layer.padding[1], wo)
    if simd_kind(target) in ("avx2", "avx512") and interior.sum() >= float_vector_lanes(target):
        counts = pool_vector_counts(lp, target, cols, interior)
    else:
        taps = conv_taps((h, w), layer.kernel, layer.stride, layer.padding, (ho, wo), 0)
        rows = conv_taps((h, 1), (kh, 1), (layer.stride[0], 1), (layer.padding[0], 0), (ho, 1), 0) * wo
        counts = loop(c) + loop(c * ho) + scaled({"add": 3, "compare": 2}, c * ho + c * ho * wo) + loop(c * ho * wo)
        counts += scaled(POOL_TAP, c * taps) + scaled({"store": 1, "addr": 1}, c * ho * wo)
        if tuple(layer.padding) != (0, 0):          # runtime tap bounds: the ky/kx loops stay loops
            counts += loop(c * taps) + loop(c * rows)
        if layer.type == "avgpool":
            counts += scaled({"fdiv": 1}, c * ho * wo)
    if not run:
        return None, counts
    yi, yin = tap_mask(h, kh, layer.stride[0], layer.padding[0], ho)
    xi, xin = tap_mask(w, kw, layer.stride[1], layer.padding[1], wo)
    acc = np.full((c, ho, wo), -np.inf if layer.type == "maxpool" else 0.0, dtype=F32)
    for ky in range(kh):
        for kx in range(kw):
            m = yin[:, ky, None] & xin[None, :, kx]
            v = x[:, np.clip(yi[:, ky], 0, h - 1)[:, None], np.clip(xi[:, kx], 0, w - 1)[None, :]]
            new = np.where(v > acc, v, acc) if layer.type == "maxpool" else acc + v
            acc = np.where(m[None], new, acc)
    return (acc / F32(kh * kw) if layer.type == "avgpool" else acc), counts


def pool_vector_counts(lp, target, cols, interior) -> Counter:
    """kernel_pool.c.j2 through the AVX-512 or AVX2 xg_pool_rows (rows of at least one vector,
    16 or 8 outputs; shorter ones take the portable loop): a row's interior columns [OX0, OX1) in
    vectors (the last one masked), each kept in a register over the window. Per in-bounds
    (ky, kx) and vector: its inputs (stride 1: a load; 2: two loads and a permute, on AVX2 two
    shuffles, masked loads in the row's last vector only; else a gather, a load per lane) and
    one max or add; per vector a store (and a divide for an average); the border columns one
    output at a time. Elsewhere the portable xg_pool_rows is counted per tap (pool's recipe in
    `pool`). cols, interior: sim.kernels_conv.axis_runs along x."""
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
    elif simd_kind(target) == "avx2":
        per_vec_tap = Counter(vload=sw, vshuffle=2 * (sw - 1), fmax=1)
    else:
        per_vec_tap = Counter(vload=sw, vshuffle=sw - 1, fmax=1)
    counts = loop(c) + loop(c * ho) + scaled({"add": 3, "compare": 2}, c * ho)
    counts += scaled({"vlogic": 1, "store": 1, "fdiv": int(layer.type == "avgpool")}, c * ho * nv)
    counts += scaled(per_vec_tap, c * rows * kw * nv) + loop(c * rows * kw * nv)
    if simd_kind(target) == "avx2" and sw == 2:     # the row's last vector: vmaskmovps, a load and a vector uop
        counts += scaled({"vlogic": 2}, c * rows * kw)
    counts += scaled({"add": 3, "compare": 2, "store": 1, "addr": 1, "fdiv": int(layer.type == "avgpool")},
                     c * ho * (wo - n_int))
    counts += scaled(POOL_TAP, c * rows * border_taps) + loop(c * rows * border_taps)
    return counts


def elementwise(lp, target, consts, ins, run: bool, op: str):
    """kernel_elementwise.c.j2: relu, leaky_relu, sign, add, copy (flatten as output), softmax."""
    n = prod(lp.out_shape)
    if op == "softmax":
        counts = scaled({"load": 1, "fmax": 1}, n) + scaled({"load": 1, "fadd": 2, "exp": 1, "store": 1}, n) \
            + scaled({"load": 1, "fdiv": 1, "store": 1}, n) + loop(3 * n)
    else:
        vec = -(-n // float_lanes(target)) if op != "copy" else -(-n // 8)   # memcpy moves 32 B per step
        counts = scaled(ELEM[op], vec) + loop(vec)
    if not run:
        return None, counts
    x = ins[0].reshape(-1)
    if op == "relu":
        out = np.where(x > 0, x, F32(0))
    elif op == "leaky_relu":          # the C's float32 product with the slope as a float32 literal
        out = np.where(x >= 0, x, F32(lp.layer.slope) * x)
    elif op == "sign":
        out = np.where(x >= 0, F32(1), F32(-1))
    elif op == "add":
        out = x + ins[1].reshape(-1)
    elif op == "copy":
        out = x.copy()
    else:
        out = _softmax(x)
    return out.reshape(lp.out_shape), counts


def _softmax(x):
    """Max, expf and a sequential float32 sum, as the C does (expf may differ by an ulp)."""
    mx = x[0]
    for v in x[1:]:
        mx = v if v > mx else mx
    e = np.exp(x - mx).astype(F32)
    s = F32(0)
    for v in e:
        s = F32(s + v)
    return e / s
