"""Simulated kind dense: templates/kernel_dense.c.j2 (xnor: pack, beta, unit blocks through
xg_xor_popcount_block or _stream; float/bwn: one accumulator per unit). Same contract as
conv_xnor: (output or None, Counter), float32 in the C's order.
"""
from __future__ import annotations

from collections import Counter
from math import prod

import numpy as np

from .binarize import pack_vector
from .conv_xnor import F32, block_counts, stream_counts, epilogue, fma32, unblock, vectorized
from .conv_real import real_block_counts
from .ops import loop, scaled, simd_kind


#: armv8: an xnor dense layer's words per input up to which gcc unrolls the block's loop and
#: broadcasts the input words once for all blocks (measured: 2 words unrolled, 21 a loop).
NEON_UNROLLED_WORDS = 8


def dense(lp, target, consts, x, run: bool):
    """kernel_dense.c.j2: xnor (pack, beta, then unit blocks of XG_FB through xg_xor_popcount_block
    over the NW words, or xg_xor_popcount_stream where the plan prefetches) or float/bwn (one
    accumulator per unit)."""
    layer = lp.layer
    n, u = prod(lp.in_shapes[0]), layer.units
    has_alpha = layer.mode != "float" and layer.scale_weight
    has_k = layer.mode == "xnor" and layer.scale_input
    epi = epilogue(has_alpha, has_k, layer.bias)
    neon_xnor = layer.mode == "xnor" and simd_kind(target) == "neon"
    counts = Counter() if neon_xnor else loop(u) + scaled({"store": 1, "addr": 1}, u) + scaled(epi, u)
    if layer.mode == "xnor":
        nw = lp.packing.words_per_pixel
        packed_beta, c1 = pack_vector(x, n, nw, lp.packing.word_bits, has_k, run, target)
        nb, fb = lp.tiling.filter_blocks, lp.tiling.filter_block
        if neon_xnor and nw > NEON_UNROLLED_WORDS:
            # a loop per group of 2 filters: per word its input loaded and broadcast, the
            # weights loaded, eor, cnt, uadalp, the index and the loop (block log, r1 of
            # tests/netgen.random_network: 21 words)
            core = scaled(Counter(load=2, vbcast=1, vxor=1, vpopcount=1, vadd=1, add=2, compare=1, branch=1),
                          nb * nw * max(1, fb // 2)) + scaled({"vlogic": 1, "vadd": 3}, nb * max(1, fb // 2))
        elif lp.tiling.prefetch_bytes:
            core = stream_counts(target, fb, nb, nb * nw)
        else:
            core = block_counts(target, fb, nb, nb * nw, 0, run_const=nw, x_hoisted=nw if neon_xnor else 0)
        counts += c1 + loop(nb) + core
        if neon_xnor:
            # armv8 (qemu-aarch64 block log of cifar_xnor fc6): gcc vectorizes the epilogue over
            # the block's filters: per vector of 4 the sums narrowed (uzp1), n - 2 * miss (two
            # ops), converted, scaled, one store
            vecs = nb * max(1, fb // 4)
            counts += scaled(Counter(vshuffle=1, vadd=2, cvt=1, store=1) + vectorized(epi), vecs)
        else:
            counts += scaled({"store": 1}, nb * fb) + scaled({"load": 1, "cvt": 1, "add": 2, "compare": 1}, u)
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
