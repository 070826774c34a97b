"""Simulated kind dense: templates/kernel_dense.c.j2 (xnor: pack, beta, unit blocks through
xg_xor_popcount_block or _stream; float/bwn: one accumulator per unit). Same contract as
conv_xnor: (output or None, Counter), float32 in the C's order.
"""
from __future__ import annotations

from math import prod

import numpy as np

from .binarize import pack_vector
from .conv_xnor import F32, block_counts, stream_counts, epilogue, fma32, unblock
from .conv_real import real_block_counts
from .ops import loop, scaled


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
