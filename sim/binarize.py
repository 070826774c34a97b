"""Simulated binarizing: templates/kernel_binarize.c.j2 (standalone stages, with a folded
batchnorm), the sign-bit packing and A that xnor conv epilogues share, and xg_pack_vector (the
xnor dense input). Same contract as conv_xnor: (output or None, Counter), float32 in the C's
order, bit-identical to it.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from xnorgen.plan.tiling import BINARIZE_TILE, SUM_LANES

from xnorgen.packing import pack_signs
from xnorgen.plan.hooks import hook_source

from .ops import float_lanes, loop, scaled, simd_kind

F32 = np.float32

BIN_ELEM = {"shift": 1, "logic": 1, "store": 1}                        # dst[p*wpp] |= !(x >= 0) << bit


def binarize_counts(target, c: int, hw: int, wpp: int, has_a: bool, has_bn: bool) -> Counter:
    """kernel_binarize.c.j2: tiles of BINARIZE_TILE (bt) pixels through xg_sign_tile (per word, the channels in
    order), then the last hw % BINARIZE_TILE pixels one at a time. AVX-512: per channel and tile one load,
    a compare to a mask, two masked ORs and |x| added; AVX2: the same in two vectors, the bits ORed
    into 32-bit halves interleaved once per tile; elsewhere the portable hook, per element.
    The tile's A is one chain of dependent adds through the channels (`chain`)."""
    bt = BINARIZE_TILE
    tiles, tail = hw // bt, hw % bt
    counts = loop(tiles * wpp) + loop(tiles * c) + scaled({"store": bt}, tiles * wpp)
    tile = hook_source(target, "sign_tile")     # xg_sign_tile: the ISA header's, or portable
    if tile == "avx512":
        # the channel's bit (a shift, a broadcast from a register), a compare to a mask and the
        # mask's upper half (kshiftrw): three port-5 operations; two masked ORs
        per = Counter(vload=1, shift=1, vshuffle=3, vlogic=2) + Counter(vfadd=int(has_a), vlogic=int(has_a), chain=int(has_a))
        per += Counter(vfmul=1, vfadd=2, load=3) if has_bn else Counter()
        counts += scaled(per, tiles * c)
    elif tile == "avx2":
        # two vectors of 8 pixels: per channel two loads, two compares (float ports), the channel's
        # bit broadcast (shift, vmovd + vpbroadcastd), an AND and an OR each; per tile the 32-bit
        # halves interleaved into words (8 shuffles) and stored (4)
        per = Counter(vload=2, vfadd=2, vlogic=4, shift=1, vshuffle=2)
        per += Counter(vlogic=2, vfadd=2, chain=1) if has_a else Counter()
        per += Counter(vfmul=2, vfadd=4, vbcast=3) if has_bn else Counter()
        counts += scaled(per, tiles * c) + scaled({"vshuffle": 8, "store": 4}, tiles * wpp)
    elif float_lanes(target) == 1:
        # the portable hook on a core without float SIMD (cortex-m4, seen in objdump): per element
        # the input load, a compare to 0 and the flags moved over (vcmpe, vmrs), the bit made
        # (ite, two moves, a shift) and ORed into bits[l], which lives in memory (load, or,
        # store); with A: |x| and its add into a[l] (load, store); with a batchnorm: a subtract,
        # a multiply and an add, and three spilled values reloaded or stored around them
        per = Counter(load=2, store=1, compare=2, logic=4, shift=1, branch=1)
        per += Counter(load=1, store=1, logic=1, fadd=1) if has_a else Counter()
        per += Counter(fadd=2, fmul=1, load=2, store=1) if has_bn else Counter()
        counts += scaled(per, tiles * c * bt)
    elif simd_kind(target) == "neon":
        # the portable hook on armv8 (qemu-aarch64 block log of cifar_xnor's stages, gcc 12 -O3):
        # per channel the tile's 4 vectors of 4 pixels; per vector a compare (fcmge) and the bits
        # made and placed in the 64-bit words (bic, two widenings, two shifts, two ORs), |x| and
        # its add for A, the batchnorm's subtract, multiply and add; per channel its scalars
        # loaded and broadcast
        v = bt // 4
        per = scaled(Counter(vfadd=1, vlogic=7), v) + Counter(load=1, vbcast=1, add=2)
        per += scaled(Counter(vlogic=1, vfadd=1), v) + Counter(chain=1) if has_a else Counter()
        per += scaled(Counter(vfmul=1, vfadd=2), v) + Counter(load=2, vbcast=1) if has_bn else Counter()
        counts += scaled(per, tiles * c)
    else:
        # the portable hook: gcc vectorizes the float part at 128 bits and widens the compare
        # into the words; per element about 5 instructions (+1 for A, +3/4 for a batchnorm)
        # on x86-64 by callgrind (stages of 32..96 channels: -19..+29 %)
        per = Counter(load=1, compare=1, logic=2, shift=1) + Counter(fadd=int(has_a))
        counts += scaled(per, tiles * c * bt) + scaled(Counter(fmul=1, fadd=2) if has_bn else Counter(), tiles * c * bt // 4)
        counts += scaled({"chain": int(has_a)}, tiles * c)      # the tile's A: one add per channel on each lane
    if has_a:
        counts += scaled({"load": 1, "fdiv": 1, "store": 1}, tiles * bt) + loop(tiles * bt)
    per_tail = Counter(load=1, compare=1, load_op=1) + Counter(BIN_ELEM) + Counter(fadd=int(has_a), logic=int(has_a),
                                                                           chain=int(has_a))
    per_tail += Counter(fmul=1, fadd=2, load_op=3) if has_bn else Counter()
    counts += scaled(per_tail, tail * c) + loop(tail * c) + scaled({"store": 1}, tail * wpp) + loop(tail)
    return counts


def pack_words(x, c: int, hw: int, wpp: int, word_bits: int):
    """Channel c of pixel p -> bit c % wb of word p*wpp + c // wb (1 = negative); [hw, wpp], in the
    C's word type: packing.pack_signs along the channels of each pixel."""
    packed = pack_signs(np.asarray(x).reshape(c, hw).T, word_bits)
    assert packed.shape == (hw, wpp), "words per pixel disagree with packing.words_for: run plan_stages"
    return packed.astype(np.dtype(f"<u{word_bits // 8}"))


def abs_mean(x, c: int, hw: int):
    """A: float32 running sum of |x| over channels in channel order, then one divide."""
    a = np.zeros(hw, dtype=F32)
    xs = x.reshape(c, hw)
    for ch in range(c):
        a = a + np.abs(xs[ch])
    return a / F32(c)


def bn_float32(x, consts):
    """A batchnorm in float32 as the C computes it: (x - mean[c]) * scale[c] + beta[c], x [C, HW]."""
    col = lambda k: consts[k].astype(F32)[:, None]   # noqa: E731
    return (x.astype(F32) - col("mean")) * col("scale") + col("beta")


def binarize_stage(st, target, src, bn_consts, run: bool):
    """A standalone stage: ((packed [hw, wpp], amap or None) or None, counts)."""
    counts = binarize_counts(target, st.channels, st.hw, st.words_per_pixel, st.needs_amap, st.bn is not None)
    if not run:
        return None, counts
    x = src.reshape(st.channels, st.hw).astype(F32)
    if st.bn is not None:
        x = bn_float32(x, bn_consts)
    packed = pack_words(x, st.channels, st.hw, st.words_per_pixel, target.word_bits)
    return (packed, abs_mean(x, st.channels, st.hw) if st.needs_amap else None), counts


def pack_vector(x, n: int, nw: int, word_bits: int, has_beta: bool, run: bool, target):
    """xg_pack_vector (xnor dense input): ((packed [1, nw], beta or None) or None, counts). beta
    sums |x| in SUM_LANES partial sums (input i into sum i % SUM_LANES, in input order), adds
    them pairwise, then divides by n, in float32. AVX-512: per 16 inputs a masked load, a
    compare to a mask, |x| and an add, a shift and or per mask; elsewhere per input a load,
    compare, shift, or into the word (and |x| and an add for beta)."""
    if hook_source(target, "pack_vector") == "avx512":
        steps = -(-n // SUM_LANES)
        counts = scaled({"vload": 1, "compare": 1, "shift": 1, "logic": 1, "vlogic": int(has_beta),
                         "vfadd": int(has_beta)}, steps) + loop(steps) + loop(nw) + scaled({"store": 1}, nw)
    elif float_lanes(target) == 1:
        # cortex-m4 (qemu-system-arm block log of a random network's xnor dense, 2026-12-05): per
        # input the load, compare and flags (vcmpe, vmrs), the bit made (ite, two moves, a shift)
        # and ORed into its word in memory (index split, load, or, store) and the loop; with
        # beta, |x| added into its lane in memory (vabs, vadd, the lane's address, a store)
        per = Counter(load=2, store=1, shift=2, logic=2, compare=4, add=5, branch=1)
        per += Counter(logic=1, fadd=1, store=1, add=3) if has_beta else Counter()
        counts = scaled(per, n) + scaled({"store": 1}, nw) + loop(nw)
    else:
        counts = scaled({"load": 1, "compare": 1, "shift": 1, "logic": 2, "store": 1, "addr": 1}, n) + loop(n) \
            + scaled({"logic": int(has_beta), "fadd": int(has_beta)}, n) + scaled({"store": 1}, nw) + loop(nw)
        if simd_kind(target) == "neon":   # armv8 (block log of cifar_xnor fc6): the word and the
            # beta lane live in memory, each loaded and stored per input, the index split (and, asr)
            counts += scaled({"load": 2, "store": 1, "logic": 2, "add": 1, "compare": 1}, n)
    if has_beta:
        counts += scaled({"fadd": 1, "load": 2, "store": 1}, SUM_LANES - 1) + Counter(fdiv=1)
    if not run:
        return None, counts
    x = x.reshape(-1).astype(F32)
    beta = None
    if has_beta:
        rows = np.zeros(-(-n // SUM_LANES) * SUM_LANES, dtype=F32)
        rows[:n] = np.abs(x)
        s = np.zeros(SUM_LANES, dtype=F32)
        for row in rows.reshape(-1, SUM_LANES):          # the lanes' sums, in input order
            s = s + row
        h = SUM_LANES // 2
        while h >= 1:
            s[:h] = s[:h] + s[h:2 * h]
            h //= 2
        beta = s[:1] / F32(n)
    return (pack_words(x, n, 1, nw, word_bits), beta), counts
