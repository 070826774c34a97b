"""Simulated float and bwn convolutions: templates/kernel_conv2d_real.c.j2.

Filter blocks of XG_FFB float lanes, columns in groups (border groups through zero-padded row
copies) or, with pixel lanes, outputs in the vector lanes (reading a zero-padded copy of the
input); each output sums its taps in channel,
ky, kx order, as fused multiply-adds on FMA targets (fma32), so outputs are bit-identical to the
C. Returns (output or None, Counter of operations) like conv_xnor.
"""
from __future__ import annotations

from collections import Counter
from math import prod

import numpy as np

from .conv_xnor import CALL, F32, PIXEL, ROW, axis_runs, epilogue, fma32, unblock, vectorized
from .loops import tap_mask, valid_taps
from xnorgen.plan.hooks import hook_source

from .ops import float_lanes, float_vector_lanes, loop, scaled, simd_kind


def _flip(target, ffb: int, fv: int) -> dict:
    """bwn: the sign-flip vector of one mask, ((m >> lane) & 1) << 31: SSE2 has no per-lane
    variable shift, so gcc does it lane by lane; AVX2/AVX-512/NEON: broadcast, vpsrlvd, and,
    shift (AVX2's two-vector blocks: one broadcast, then a shift and an and per vector); no float
    SIMD: per lane."""
    if _sse2_only(target):
        return {"shift": 4, "logic": 4, "vlogic": 8}
    if hook_source(target, "macc_window") == "avx2":
        return {"vlogic": 1 + 2 * fv}    # xg_avx2.h's own window: one broadcast, vpsllvd and and per half
    if float_lanes(target) > 1:
        return {"vlogic": 4 * fv}
    return {"shift": 2 * ffb, "logic": ffb}


def _bwn_taps(target, ffb: int, fv: int, taps: int, outs: int) -> Counter:
    """bwn windows: per tap the mask's flip vector; with FMA it is made +1.0 / -1.0 (an or) and
    each of the tap's outputs takes a broadcast input and one multiply-add per vector; without,
    each output adds its input with the sign flipped (an xor and an add per vector)."""
    sse2 = _sse2_only(target)
    per_tap, per_out = Counter(_flip(target, ffb, fv)), Counter(load=1, vlogic=1 if sse2 else 0)
    if target.fma:
        per_tap["vlogic"] += fv
        per_out += _macc(target, fv)
    else:
        per_out += Counter(vlogic=fv, vfadd=fv)
    return scaled(per_tap, taps) + scaled(per_out, taps * outs)


def _macc(target, n: int) -> Counter:
    """n vector multiply-accumulates: one fused multiply-add each on FMA targets (XG_VFMA), else a
    multiply and an add."""
    return Counter(vfma=n) if target.fma else Counter(vfmul=n, vfadd=n)


def real_block_counts(target, ffb: int, bwn: bool, calls: int, taps_const: int, taps_var: int) -> Counter:
    """`calls` calls of xg_macc_block / xg_sign_block (one output, XG_FFB lanes) over taps_const
    taps in compile-time-n calls and taps_var in runtime-n calls: per tap a weight vector (or a
    sign flip), the input value broadcast, a vector multiply-add (or a flip and an add)."""
    fv = max(1, ffb // float_vector_lanes(target))
    sse2 = _sse2_only(target)
    taps = taps_const + taps_var
    counts = scaled(CALL, calls) + scaled({"vload": fv, "store": fv}, calls) + loop(taps_var)
    if target.post_index and not bwn:       # the loop's pointer steps ride on the loads
        counts -= Counter(add=taps_var)
    if bwn:
        counts += _bwn_taps(target, ffb, fv, taps, 1)
        if simd_kind(target) == "neon":     # the mask byte's load (block log of a bwn dense)
            counts += Counter(load=taps)
    else:
        counts += scaled(Counter(vload=fv, load=1, vlogic=1 if sse2 else 0) + _macc(target, fv), taps)
    return counts


def _sse2_only(target) -> bool:
    """x86-64 baseline (SSE2): no broadcast-from-memory and no per-lane variable shift."""
    return bool(set(target.arch) & {"x86_64", "AMD64"}) and target.vector_bits < 256


def real_conv_counts(lp, target) -> Counter:
    """kernel_conv2d_real.c.j2: filter block (XG_FFB lanes) > oy > [interior columns in groups of
    XG_PB: per (channel, ky) one xg_*_block_px call over KW taps] + [other columns one at a time:
    per (channel, ky) one xg_*_block call over the in-bounds taps]. One float vector instruction
    covers XG_FFB lanes (several on narrower SIMD, one per lane without SIMD)."""
    expand = expand_counts(lp, target)
    if lp.tiling.pixel_lanes:
        return real_lanes_counts(lp, target) + expand
    layer = lp.layer
    c, h, w = lp.in_shapes[0]
    f, ho, wo = lp.out_shape
    kh, kw = layer.kernel
    nb, ffb = lp.tiling.filter_blocks, lp.tiling.filter_block
    fv = max(1, ffb // float_vector_lanes(target))           # vector instructions per block of lanes
    sse2 = _sse2_only(target)
    bwn = layer.mode == "bwn" and not lp.tiling.bwn_expand    # expanded masks: the float kernels
    pb = lp.tiling.pixel_block
    rows_axis, _ = axis_runs(h, kh, layer.stride[0], layer.padding[0], ho)
    # interior columns in groups of pb (the plan's decision; float/bwn always zero-pad)
    ox0, ox1 = lp.tiling.interior_columns
    border = len(lp.tiling.border_groups)
    groups = len(lp.tiling.interior_groups) + border      # interior groups, then border groups
    single_cols = 0 if pb else wo
    counts = loop(nb) + scaled(ROW, nb * ho) + loop(nb * ho)
    # --- grouped path: per (fb, oy, group) ---
    ng = nb * ho * groups
    calls_g = nb * int(rows_axis.sum()) * groups * c          # (group, c, ky) calls, KW taps each
    counts += loop(ng) + scaled({"add": 2, "addr": 2}, ng) + scaled({"vlogic": pb * fv}, ng) + loop(ng * c) \
        + scaled({"addr": 2}, ng * c) + scaled(CALL, calls_g)
    taps_g = calls_g * kw
    swar = hook_source(target, "macc_window") == "swar"
    if swar:
        counts += swar_window_counts(bwn, calls_g, kw, pb, ng, c)
    elif target.paired_loads:
        # armv8 (qemu-aarch64 block log of digits_float, cifar_xnor and random networks' bwn 3x1
        # convs, gcc 12 -O3): gcc keeps a run's inputs in registers, so per (channel, row) run its
        # (pb - 1) * SW + KW inputs are loaded once, two per ldp; float: the KW weight vectors
        # too, and the pb sums moved between registers once (mov v); bwn: per tap the mask byte
        # loaded and made a +-1.0 vector (dup, ushl, and, shl, orr). Then one fmla per tap and output.
        seg_in = (pb - 1) * layer.stride[1] + kw
        counts += scaled({"load": -(-seg_in // 2)}, calls_g) + scaled(_macc(target, fv), taps_g * pb)
        if kw == 1:     # no tap loop: the rows unrolled, a run is a compare and a branch
            counts = counts - scaled(CALL, calls_g) + Counter(compare=calls_g, branch=calls_g)
        if bwn:
            counts += scaled(Counter(load=1, vlogic=fv) + Counter(_flip(target, ffb, fv)), taps_g)
        else:
            counts += scaled({"vload": -(-kw * fv // 2), "vlogic": pb}, calls_g)
    elif bwn:
        counts += _bwn_taps(target, ffb, fv, taps_g, pb)
    else:
        counts += scaled({"vload": fv, "vlogic": 4 if sse2 else 0}, taps_g) \
            + scaled(Counter(load=1) + _macc(target, fv), taps_g * pb)
    outs_g = ng * pb * min(ffb, f)
    seg = (pb - 1) * layer.stride[1] + kw                    # border groups: zero-padded row copies
    # the copy's bounds are compile-time per group, so gcc folds them: vector moves (and zeros)
    fl = float_lanes(target)
    copies = nb * int(rows_axis.sum()) * border * c
    if swar:          # element by element, with the bounds test: 6 instructions each (M4 block log)
        counts += scaled(SWAR_SEG, seg * copies)
    elif target.paired_loads:     # armv8: gcc loads the copy's in-bounds part into the run's
        # registers directly (counted with the run); with 8 sums it stores them after each run
        # (cifar_xnor conv1, random stems; with 4, digits_float conv2, it does not)
        counts += scaled({"store": pb * fv}, copies) if pb * fv > 4 else Counter()
    else:
        counts += scaled({"vload": -(-seg // fl), "store": -(-seg // fl)}, copies)
    # --- single columns: per (fb, oy, ox) ---
    np_ = nb * ho * single_cols
    counts += loop(np_) + scaled(PIXEL, np_)
    counts += loop(np_ * c) + scaled({"addr": 2, "compare": 2, "branch": 1}, np_ * c)
    # in-bounds rows and taps of the single columns
    cols_axis, interior = axis_runs(w, kw, layer.stride[1], layer.padding[1], wo)
    sel = np.full(wo, not pb)                                # single columns only without groups
    r = int(rows_axis.sum())
    calls_s = nb * c * r * int(sel.sum())
    taps_s_const = nb * c * r * int((sel & interior).sum()) * kw
    taps_s_var = nb * c * r * int(cols_axis[sel & ~interior].sum())
    counts += real_block_counts(target, ffb, bwn, calls_s, taps_s_const, taps_s_var)
    outs = outs_g + np_ * min(ffb, f)
    has_alpha = layer.mode != "float" and layer.scale_weight
    epi = epilogue(has_alpha, False, layer.bias)
    if simd_kind(target) == "neon" and f % ffb == 0:   # unrolled stores, one vector op per pixel
        counts += scaled({"store": 1}, outs) + scaled(vectorized(epi), fv * (outs // min(ffb, f)))
    elif simd_kind(target) == "neon":
        # a partial last block: per output the sum reloaded, its scalars loaded, a store and the
        # bound test (block log of r1 of tests/netgen.random_network, 65 filters; a fused
        # batchnorm's loads: 3 more, its arithmetic is the epilogue's)
        per = Counter(load=1 + epi.get("load_op", 0) + (3 if lp.epilogue else 0), store=1, compare=1, branch=1)
        counts += scaled(per + Counter({k: v for k, v in epi.items() if k != "load_op"}), outs)
    else:
        counts += scaled({"store": 1, "addr": 1, "logic": 1}, outs) + scaled(epi, outs)
    if swar:          # the M4's epilogue is a loop over the block's filters with a scattered store
        counts += loop(outs)
    return counts + expand


#: cortex-m4 (xg_swar.h's windows), per instruction class from the emulated M4's block log
#: (cifar_xnor conv1, digits_float, digits_bwn; arm-none-eabi-gcc 12.2 -O2, 2026-12-05). gcc
#: keeps a pair's 8 sums in FPU registers over one (channel, row) run of taps, not across runs:
#: per run and pair the sums are loaded and stored (8 + 8) with the loop around them. Per tap and
#: pair the 4 weights and 1 input are loaded (the other input is the previous tap's), 8 multiplies
#: and 8 adds. bwn: per tap and pair the mask and 1 input loaded, the mask's 4 bits tested and
#: made +-1.0 (a test, an it-block and two conditional moves each), 8 multiplies and 8 adds.
SWAR_RUN_PAIR = Counter(load=10, store=8, add=3, compare=1, branch=1)
SWAR_RUN_ODD = Counter(load=5, store=4, add=2, compare=1, branch=1)
SWAR_TAP_PAIR = Counter(load=5, fmul=8, fadd=8, add=2, compare=1, branch=1)
SWAR_TAP_ODD = Counter(load=5, fmul=4, fadd=4, add=1, compare=1, branch=1)
SWAR_BWN_TAP_PAIR = Counter(load=2, logic=4, compare=5, add=8, fmul=8, fadd=8, branch=1)
SWAR_BWN_TAP_ODD = Counter(load=2, logic=4, compare=5, add=5, fmul=4, fadd=4, branch=1)   # as the pair's
SWAR_SEG = Counter(load=1, store=1, compare=2, branch=1, add=1)  # a border group's row copy


def swar_window_counts(bwn: bool, runs: int, kw: int, pb: int, calls: int, nc: int) -> Counter:
    """xg_swar.h's xg_macc_window_px / xg_sign_window_px over `runs` (channel, row) runs of kw
    taps in `calls` calls (nc channels each) for pb outputs (pairs, then an odd one). With kw = 1
    there is no tap loop: gcc makes the row loop the inner one and keeps the sums in registers
    over the whole call (per channel a 7-instruction step; per tap one input more to load, since
    the pair's second input is not the previous tap's, and two more pointer adds; r4 of
    tests/netgen.random_network, bwn 3x1, 2026-12-05; the float window by analogy)."""
    pairs, odd = pb // 2, pb % 2
    tap_pair, tap_odd = (SWAR_BWN_TAP_PAIR, SWAR_BWN_TAP_ODD) if bwn else (SWAR_TAP_PAIR, SWAR_TAP_ODD)
    if kw == 1:
        trips = calls
        counts = scaled(Counter(add=5, compare=1, branch=1), calls * nc * (pairs + odd))
        tap_pair, tap_odd = tap_pair + Counter(load=1, add=2), tap_odd + Counter(add=1)
    else:
        trips, counts = runs, Counter()
    counts += scaled(SWAR_RUN_PAIR, trips * pairs) + scaled(SWAR_RUN_ODD, trips * odd)
    return counts + scaled(tap_pair, runs * kw * pairs) + scaled(tap_odd, runs * kw * odd)


def expand_counts(lp, target) -> Counter:
    """A bwn conv with tiling bwn_expand: per filter block, each of the C*KH*KW masks loaded and
    turned into XG_FFB floats of +1.0 / -1.0 (gcc vectorizes over the filters: a broadcast, a
    shift, an and, a compare or blend per vector) and stored. Nothing otherwise."""
    if not lp.tiling.bwn_expand:
        return Counter()
    fv = max(1, lp.tiling.filter_block // float_vector_lanes(target))
    n = lp.tiling.filter_blocks * lp.in_shapes[0][0] * prod(lp.layer.kernel)
    return scaled({"load": 1, "vlogic": 4 * fv, "store": fv}, n) + loop(n)


def real_lanes_counts(lp, target) -> Counter:
    """kernel_conv2d_real.c.j2 in pixel lanes (xg_macc_lanes): filter block > oy > group of px
    columns; per tap the group's input vector (stride 1 or split rows: one load) and one
    multiply-add per filter of the block with its weight broadcast from memory.
    With padding or split rows, the kernel first copies its input into a zero-padded buffer
    (memcpy/memset and the even/odd split, counted as vector moves) and every window is whole.
    The epilogue is vectorized over the columns."""
    layer = lp.layer
    c, h, w = lp.in_shapes[0]
    f, ho, wo = lp.out_shape
    kh, kw = layer.kernel
    nb, ffb, px = lp.tiling.filter_blocks, lp.tiling.filter_block, lp.tiling.pixel_lanes
    assert not lp.tiling.border_groups, "pixel lanes read whole windows: run plan_tiling (padded_input) first"
    v = max(1, px // float_vector_lanes(target))                          # vectors per group of columns
    counts = Counter()
    split = lp.tiling.split_columns
    if lp.tiling.padded_input:
        _, hp, wp = lp.tiling.padded_input
        fl = float_vector_lanes(target)
        counts += scaled({"vload": 1, "store": 1}, c * h * -(-w // fl)) + scaled({"store": 1}, c * -(-hp * wp // fl))
        if split:                      # each row through a stack copy, even and odd columns apart
            counts += scaled({"vload": 2, "vlogic": 1, "store": 1}, c * h * -(-wp // fl))
        rows = ho * kh
    else:
        rows = valid_taps(h, kh, layer.stride[0], layer.padding[0], ho)    # (oy, ky) pairs in bounds
    inner = len(lp.tiling.interior_groups)
    taps = nb * rows * c * kw * inner
    assert layer.stride[1] == 1 or split, "stride-2 lanes read split rows: run plan_tiling (split_columns) first"
    xv = Counter(vload=v)
    counts += loop(nb) + scaled(ROW, nb * ho) + loop(nb * ho) + loop(nb * ho * inner)
    counts += scaled(xv + Counter(load_op=ffb) + _macc(target, ffb * v), taps) + loop(taps)
    fv = nb * ho * inner * min(ffb, f) * v                               # float vectors of outputs
    has_alpha = layer.mode != "float" and layer.scale_weight
    epi = epilogue(has_alpha, False, layer.bias)
    counts += scaled({"store": 1, "vload": 1}, fv) + scaled(
        {"vfmul": epi.get("fmul", 0), "vfadd": epi.get("fadd", 0), "load_op": epi.get("load_op", 0)}, fv)
    return counts


def real_conv(lp, target, consts, x, run: bool):
    """kernel_conv2d_real.c.j2 (float and bwn); per output the taps sum in channel, ky, kx order."""
    counts = real_conv_counts(lp, target)
    if not run:
        return None, counts
    layer = lp.layer
    has_alpha = layer.mode != "float" and layer.scale_weight
    return _real_core(lp, target, consts, x, has_alpha), counts


def _real_weights(lp, consts):
    """[F, C, KH, KW] float32 weights (bwn: ±1) from the blocked layouts."""
    layer = lp.layer
    c = lp.in_shapes[0][0]
    f = lp.out_shape[0]
    kh, kw = layer.kernel
    ffb = lp.tiling.filter_block
    if layer.mode == "bwn":
        masks = consts["w"].astype(np.int64).reshape(-1, c * kh * kw)          # [NB, taps]
        bits = (masks[:, :, None] >> np.arange(ffb)[None, None, :]) & 1        # [NB, taps, FFB]
        neg = np.moveaxis(bits, -1, 1).reshape(-1, c * kh * kw)[:f]
        return np.where(neg.astype(bool), F32(-1), F32(1)).reshape(f, c, kh, kw)
    return unblock(consts["w"].astype(F32), lp.tiling, f, (c, kh, kw))


def _real_core(lp, target, consts, x, has_alpha):
    """Float32 accumulation in the C's order: channel, then ky, then kx."""
    layer = lp.layer
    c, h, w = lp.in_shapes[0]
    f, ho, wo = lp.out_shape
    kh, kw = layer.kernel
    wts = _real_weights(lp, consts)
    yi, yin = tap_mask(h, kh, layer.stride[0], layer.padding[0], ho)
    xi, xin = tap_mask(w, kw, layer.stride[1], layer.padding[1], wo)
    acc = np.zeros((f, ho, wo), dtype=F32)
    for ch in range(c):                     # float/bwn zero-pad: padded taps add nothing
        for ky in range(kh):
            for kx in range(kw):
                m = yin[:, ky, None] & xin[None, :, kx]
                v = x[ch][np.clip(yi[:, ky], 0, h - 1)[:, None], np.clip(xi[:, kx], 0, w - 1)[None, :]]
                wt = wts[:, ch, ky, kx][:, None, None]
                if layer.mode == "bwn":
                    new = acc + np.where(wt < 0, -v[None], v[None])
                elif target.fma:                            # fused multiply-add: one rounding per tap
                    new = fma32(v[None], wt, acc)
                else:
                    new = acc + v[None] * wt
                acc = np.where(m[None], new, acc)
    if has_alpha:
        acc = acc * consts["alpha"].astype(F32)[:, None, None]
    if layer.bias:
        acc = acc + consts["bias"].astype(F32)[:, None, None]
    return acc
