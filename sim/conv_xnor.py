"""Simulated kernels: templates/kernel_conv2d_xnor.c.j2 and K (xg_box_mean); binarize stages and
the packing of sign bits are in binarize, float and bwn convolutions in conv_real,
which shares the helpers here.

Each kernel follows its LayerPlan (packing: words per pixel; tiling: filter blocks of XG_FB
words or XG_FFB floats) and the fusion plan (binarize stages, folded batchnorms, epilogue
stages) and returns (output or None, Counter of operations). With run=False only the counts
are made (closed-form sums of the loop trip counts). Functional runs work on the same packed
words and in the same float32 operation order as the C, so outputs are bit-identical to it.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from xnorgen.codegen.lowering import deinterleave_filters
from xnorgen.packing import pad_word_pattern
from xnorgen.plan.hooks import PORTABLE, hook_source
from xnorgen.plan.tiling import LANE_FILTERS

from .binarize import F32, abs_mean, bn_float32, pack_words
from .loops import tap_mask, valid_taps, window_bounds
from .ops import float_lanes, float_vector_lanes, loop, scaled, simd_kind, word_lanes


# Instruction recipes per iteration of a loop level (classes: see ops.py). `load_op` is a load
# folded into the consuming instruction as a memory operand (costs a load, is no instruction).
# Calibrated by reading what gcc 12 -O3 makes of the templates (callgrind per source line and
# objdump, x86-64 target; docs/simulator.md).
BOX_TAP = {"compare": 2, "branch": 1, "add": 1}                        # bounds test per tap
BOX_IN = {"load": 1, "fadd": 1}                                        # in-bounds tap
ROW = {"add": 3, "compare": 2}                                         # row window bounds (per fb, oy)
PIXEL = {"add": 4, "compare": 3, "branch": 2, "addr": 2}               # col bounds, run select (per fb, oy, ox)
CALL = {"add": 2, "compare": 1, "branch": 1, "addr": 2}                # one xg_*_block call (a kernel row)
OUT = {"load": 1, "add": 2, "cvt": 1, "store": 1, "addr": 2}           # miss[b] -> n - 2*miss -> float, store
OUT_NEON = {"add": 2, "cvt": 1, "store": 1}   # armv8 (block logs): miss[] stays in registers
THRESHOLD_BIT = {"load": 2, "compare": 1, "logic": 2, "shift": 1}   # sign thresholds: (miss >= thr) ^ inv << b
EPI_BN = {"fmul": 1, "fadd": 2, "load_op": 3}                          # y = (v - mean[f]) * scale[f] + beta[f]
EPI_PACK = {"load": 1, "compare": 1, "logic": 1, "shift": 1, "store": 1, "addr": 1}   # pout[..] |= bit
EPI_A = {"load": 1, "logic": 1, "fadd": 1, "store": 1}                 # aout[p] += fabsf(y)
#: AVX-512, 16-filter blocks: gcc vectorizes the per-pixel epilogue over the block's filters
#: (objdump of ResNet-18's s3b2_conv1): per pixel the counts narrowed (vpermt2d), n - 2*miss
#: (shift, subtract), converted; then each scalar class of the float epilogue one vector op.
OUT_VEC = {"vshuffle": 1, "vadd": 2, "cvt": 1}
VECTORIZED = {"fmul": "vfmul", "fadd": "vfadd", "add": "vadd", "load": "vload", "logic": "vlogic",
              "load_op": "load_op", "store": "store", "cvt": "cvt"}


def vectorized(per_output: dict) -> Counter:
    """A per-output scalar recipe as one vector instruction per operation (a vector of outputs)."""
    return Counter({VECTORIZED[k]: v for k, v in per_output.items() if v})


def epilogue(has_alpha: bool, has_k: bool, has_bias: bool) -> dict:
    """Per output value: the scale multiplies and bias add with their operand loads."""
    n_mul = int(has_alpha) + int(has_k)
    return {"fmul": n_mul, "fadd": int(has_bias), "load_op": n_mul + int(has_bias)}


# ---------------------------------------------------------------- xg_xor_popcount_block

def block_counts(target, fb: int, calls: int, words_const: int, words_var: int, accumulate: bool = True,
                 run_const: int = 0, x_hoisted: int = 0) -> Counter:
    """`calls` calls of xg_xor_popcount_block(x, w, n, acc) with FB = fb filter lanes; in total
    words_const words in calls with a compile-time n (unrolled) and words_var in runtime-n calls.
    Scalar targets: per word one load of x[j], then per lane xor (weight as memory operand),
    popcount, add. SIMD targets: one vector instruction per class handles word_lanes filters
    (AVX-512: vpbroadcastq, vpxorq with the weight load, vpopcntq, vpaddq; AVX2's pshufb
    popcount is 6 instructions; NEON: dup, ld1, eor, cnt, uadalp). x_hoisted > 0: every call
    reads the same x_hoisted input words (a dense layer), which NEON broadcasts once, before."""
    kind, lanes = hook_source(target, "xor_popcount_block"), word_lanes(target)
    words = words_const + words_var
    if kind == PORTABLE:
        per_word = Counter(load=1, logic=2) + scaled({"load_op": 1, "xor": 1, "popcount": 1, "add": 1}, fb)
        per_call = scaled({"load": 1, "add": 1, "store": 1}, fb)          # acc[b] += s[b]
        over = loop(words_var)
    elif kind == "swar":
        # xg_swar.h's 4-filter block, inlined into the kernel (always_inline): words in pairs,
        # each pair's x loaded once for the 4 filters, xg_popcount_pair per filter; an odd last
        # word one xg_popcount per filter. Counted per instruction class from the emulated M4
        # (qemu-system-arm block log of cifar_xnor and digits_xnor, arm-none-eabi-gcc 12.2 -O2,
        # 2026-12-05): a pair of words for the 4 filters is 97 instructions with its loop step
        # (13 general registers hold 4 masks, 2 pointers and the temporaries, so the 4 sums and
        # a mask live on the stack: 6 loads and 5 stores of the 16 + 5); an odd word 66; a call
        # 30 (the sums zeroed and added into acc[], the live registers of the caller around it).
        assert fb == 4, "the swar block is for 4-filter blocks (targets/cortex-m4.yaml hooks)"
        odd_calls = calls if calls and (words // calls) % 2 else 0
        pairs = (words - odd_calls) // 2
        pair = Counter(load=16, xor=8, add=29, store=5, logic=32, mul=4)
        odd = Counter(load=8, xor=4, add=25, shift=9, logic=16, store=4)
        per_call = Counter(load=9, store=9, add=12)
        return scaled(pair, pairs) + loop(pairs) + scaled(odd, odd_calls) + scaled(per_call, calls)
    elif kind == "neon":
        # xg_neon.h on armv8, from qemu-aarch64's block log of cifar_xnor's and digits_xnor's
        # convs (aarch64-linux-gnu-gcc 12 -O3, 2026-12-05): per word the input word loaded and
        # broadcast once for all groups (ld1r, or ldr + dup), the groups' weight vectors loaded two
        # at a time (ldp q), then per group eor, cnt, uadalp; per call and group the sum zeroed
        # and reduced (uaddlp twice, an add into acc). Compile-time runs are fully unrolled.
        groups = max(1, fb // lanes)
        x_word = Counter(load=1, vbcast=1)
        per_word = Counter(vload=-(-groups // 2), vxor=groups, vpopcount=groups, vadd=groups)
        per_call = scaled({"vlogic": 1, "vadd": 3}, groups) + Counter(compare=1, branch=1)
        return (scaled(x_word, x_hoisted or words) + scaled(per_word, words) + scaled(per_call, calls)
                + loop(-(-words_var // 2)))
    else:
        groups = max(1, fb // lanes)
        vec = {"vbcast": 1, "vload": 1, "vxor": 1, "vpopcount": 1, "vadd": 1}   # the input word broadcast
        if kind == "avx2":
            vec = dict(vec, vlogic=5)                                     # nibble-table popcount
        per_word = scaled(vec, groups)
        if kind == "avx2":                     # up to four groups share a pass, and its broadcast
            per_word["vbcast"] = -(-groups // 4)
        per_call = scaled({"vload": 1, "vadd": 2, "store": 1, "vlogic": 2}, groups)
        over = loop(-(-words // 2))                                         # unrolled by two
    if kind == PORTABLE and run_const * fb > 16:
        # a fully unrolled constant run of run_const words x fb lanes outgrows the 16 GPRs:
        # gcc spills each xor result and reloads it for popcnt (seen in objdump)
        per_word_spill = scaled({"store": 1, "load": 1}, fb)
        counts_spill = scaled(per_word_spill, words_const)
    else:
        counts_spill = Counter()
    if not accumulate:                   # the caller's acc is known zero: gcc keeps s[] as miss[]
        per_call = Counter()
    return scaled(per_word, words) + scaled(per_call, calls) + scaled(CALL, calls) + over + counts_spill


def stream_counts(target, fb: int, calls: int, words: int) -> Counter:
    """`calls` calls of the AVX-512 xg_xor_popcount_stream (an xnor dense layer with a
    prefetch distance, tiling.prefetch_bytes), `words` words in all: per word one vpbroadcastq,
    then per vector of filters a prefetcht0 (counted as a load), vpxorq with the weight load,
    vpopcntq, vpaddq; a loop gcc does not unroll. Elsewhere the hook is xg_xor_popcount_block."""
    if hook_source(target, "xor_popcount_stream") != "avx512":
        return block_counts(target, fb, calls, words, 0, run_const=words // max(1, calls))
    groups = max(1, fb // word_lanes(target))
    per_word = Counter(vbcast=1) + scaled({"load": 1, "vload": 1, "vxor": 1, "vpopcount": 1, "vadd": 1}, groups)
    per_call = scaled({"vload": 1, "vadd": 1, "store": 1, "vlogic": 1}, groups)
    return scaled(per_word, words) + scaled(per_call, calls) + scaled(CALL, calls) + loop(words)


# ---------------------------------------------------------------- binarize stages


def fma32(a, b, c):
    """float32 fused multiply-add, exactly as C's fmaf: round32(a*b + c) with one rounding.
    a*b is exact in float64 (24 + 24 bits); s = p + c rounds once to 53 bits and TwoSum gives
    its exact error e. Rounding s to float32 can only go wrong when s sits exactly halfway
    between two float32 values while p + c does not (e != 0): then the true value lies on the
    side of e."""
    a64, b64, c64 = (np.asarray(v, dtype=F32).astype(np.float64) for v in (a, b, c))
    p = a64 * b64
    s = p + c64
    bb = s - p
    e = (p - (s - bb)) + (c64 - bb)
    r = s.astype(F32)
    r64 = r.astype(np.float64)
    toward = np.where(s > r64, np.float32(np.inf), np.float32(-np.inf)).astype(F32)
    other = np.nextafter(r, toward)
    o64 = other.astype(np.float64)
    tie = (s != r64) & (np.abs(s - r64) == np.abs(o64 - s))
    fix = tie & (e != 0) & ((o64 - r64) * e > 0)
    return np.where(fix, other, r).astype(F32)


def box_mean(a, h, w, kernel, stride, padding, out_hw, run: bool, lanes: int = 4):
    """xg_box_mean: K = zero-padded box mean of A over the kernel window, at the stride. Interior
    columns a vector of `lanes` outputs at a time (each output's in-bounds (ky, kx) taps in
    order), border columns one output at a time with a bounds test per tap; one divide each."""
    (kh, kw), (sh, sw), (ph, pw), (ho, wo) = kernel, stride, padding, out_hw
    cols, interior = axis_runs(w, kw, sw, pw, wo)
    vec = -(-int(interior.sum()) // lanes)                               # vectors per interior row
    rows_in = valid_taps(h, kh, sh, ph, ho)                              # (oy, ky) pairs in bounds
    bord = wo - int(interior.sum())
    counts = (scaled(ROW, ho) + loop(ho)
              + scaled({"vload": 1, "vfadd": 1}, rows_in * kw * vec) + loop(rows_in * kw * vec)
              + scaled({"fdiv": 1, "store": 1}, ho * vec) + loop(ho * vec)
              + scaled(BOX_TAP, rows_in * bord * kw) + loop(rows_in * bord * kw)     # border outputs
              + scaled(BOX_IN, rows_in * int(cols[~interior].sum()))
              + scaled({"fdiv": 1, "store": 1}, ho * bord) + loop(ho * bord) + loop(ho * wo))
    if not run:
        return None, counts
    yi, yin = tap_mask(h, kh, sh, ph, ho)
    xi, xin = tap_mask(w, kw, sw, pw, wo)
    a2 = a.reshape(h, w)
    s = np.zeros((ho, wo), dtype=F32)
    for ky in range(kh):
        for kx in range(kw):
            m = yin[:, ky, None] & xin[None, :, kx]
            v = a2[np.clip(yi[:, ky], 0, h - 1)[:, None], np.clip(xi[:, kx], 0, w - 1)[None, :]]
            s = np.where(m, s + v, s)
    return (s / F32(kh * kw)).reshape(-1), counts


# ---------------------------------------------------------------- window geometry

def axis_runs(size: int, k: int, s: int, p: int, out: int):
    """Per output index along one axis: number of in-bounds taps, and whether all k are in bounds."""
    _, k0, k1 = window_bounds(size, k, s, p, out)
    return (k1 - k0), (k0 == 0) & (k1 == k)


def conv_geometry(layer, h, w, ho, wo) -> dict:
    """Closed-form trip counts of the row-run loop nest of one filter block (all outputs)."""
    kh, kw = layer.kernel
    rows, _ = axis_runs(h, kh, layer.stride[0], layer.padding[0], ho)
    cols, interior = axis_runs(w, kw, layer.stride[1], layer.padding[1], wo)
    r = int(rows.sum())
    n_int = int(interior.sum())
    return {"rows": r, "calls_int": r * n_int, "calls_bord": r * (wo - n_int),
            "taps_int": r * n_int * kw, "taps_bord": r * int(cols[~interior].sum()),
            "padded": ho * wo * kh * kw - int(rows.sum()) * int(cols.sum()),
            "n_int": n_int}


# ---------------------------------------------------------------- xnor conv

def padpop_counts(layer, h, w, ho, wo, nb: int, f: int, lane_cols, px: int) -> Counter:
    """pad_value != 0: the padded taps' mismatches (padpop). Per-pixel path: one test per pixel
    whether its window is clipped, then for clipped (border) pixels per filter a loop over the
    kernel's taps testing each; pixel lanes (interior columns lane_cols): per group and filter,
    on border rows only, a loop over the taps testing the row. One load and add per padded tap."""
    kh, kw = layer.kernel
    rows, _ = axis_runs(h, kh, layer.stride[0], layer.padding[0], ho)
    cols, _ = axis_runs(w, kw, layer.stride[1], layer.padding[1], wo)
    per_pixel = np.ones(wo, dtype=bool)
    if lane_cols:
        per_pixel[lane_cols[0]:lane_cols[1]] = False
    clipped = (rows[:, None] < kh) | (cols[None, :] < kw)
    border = int((clipped & per_pixel[None, :]).sum())
    taps = kh * kw
    counts = scaled({"compare": 4, "branch": 1}, nb * ho * int(per_pixel.sum()))
    counts += scaled({"compare": 2, "branch": 1}, f * border * taps) + loop(f * border)   # unrolled tap tests
    padded = int(((kh - rows)[:, None] * kw + rows[:, None] * (kw - cols)[None, :])[:, per_pixel].sum())
    counts += scaled({"load_op": 1, "add": 1}, f * padded)
    if lane_cols:
        groups = len(lane_groups(lane_cols[0], lane_cols[1], px))
        border_rows = int((rows < kh).sum())
        counts += scaled({"compare": 2, "branch": 1}, nb * ho * groups) \
            + scaled({"compare": 2, "branch": 1}, f * border_rows * groups * taps) \
            + scaled({"load_op": 1, "add": 1}, f * groups * int((kh - rows).sum()) * kw)
    return counts


def xnor_conv(lp, target, consts, stage_in, out_stage, run: bool):
    """kernel_conv2d_xnor.c.j2: K from the stage's A, then filter block > oy > ox > ky-row runs
    through xg_xor_popcount_block, padpop for padded taps (pad_value != 0), and per filter the
    epilogue: a float output (scattered stores, or through tile stores: plan tiling store_tile),
    or (out_stage = (stage, bn consts)) the fused batchnorm + binarize. With plan tiling
    next_block_prefetch, each pixel also prefetches its lines of the next block's weights."""
    layer = lp.layer
    c, h, w = lp.in_shapes[0]
    f, ho, wo = lp.out_shape
    wpp, fb, nb = lp.packing.words_per_pixel, lp.tiling.filter_block, lp.tiling.filter_blocks
    has_k = layer.scale_input
    counts = Counter()
    kmap = None
    if has_k:
        kmap, counts = box_mean(stage_in[1] if run else None, h, w, layer.kernel, layer.stride, layer.padding,
                                (ho, wo), run, float_lanes(target))
    g = conv_geometry(layer, h, w, ho, wo)
    px = lp.tiling.pixel_lanes
    lane_cols = (lambda a, b: b - a)(*lp.tiling.interior_columns) if px else 0
    pix = wo - lane_cols                         # outputs per row through the per-pixel block path
    counts += loop(nb) + loop(nb * ho) + loop(nb * ho * pix)
    static = tuple(layer.padding) == (0, 0)      # constant windows: gcc folds the bounds and run select
    if not static:
        counts += scaled(ROW, nb * ho) + scaled(PIXEL, nb * ho * pix) + loop(nb * g["rows"] * pix)   # + ky loops
    single = static and layer.kernel[0] == 1     # one call per pixel: miss[] = s[] directly
    taps_int = g["taps_int"] - (g["rows"] * lane_cols * layer.kernel[1] if px else 0)
    calls = nb * (g["calls_int"] - g["rows"] * lane_cols + g["calls_bord"])
    if not single:
        counts += scaled({"store": max(1, fb // word_lanes(target))}, nb * ho * pix)     # miss[] = 0
    pfl = lp.tiling.next_block_prefetch     # prefetches of the next block's lines (as loads)
    counts += scaled({"load": pfl, "addr": 2}, nb * ho * pix) if pfl else Counter()
    # every run has a compile-time length (one branch per tap range, plan tiling column_ranges)
    counts += block_counts(target, fb, calls, nb * (taps_int + g["taps_bord"]) * wpp, 0,
                           accumulate=not single, run_const=layer.kernel[1] * wpp)
    outs = f * ho * pix
    epi = Counter(epilogue(layer.scale_weight, has_k, layer.bias)) + Counter(EPI_BN if out_stage else {})
    vec_epi = simd_kind(target) == "avx512" and fb == float_vector_lanes(target)
    thresholds = lp.tiling.sign_thresholds
    if thresholds:          # per output: its threshold and flip loaded, a compare, xor, shift, or
        counts += scaled(THRESHOLD_BIT, outs)
        vec_epi = False
    elif vec_epi:                                # one vector of the block's outputs per pixel
        counts += scaled(Counter(OUT_VEC) + vectorized(epi), nb * ho * pix)
    elif simd_kind(target) == "neon":   # the sums move from the vector registers (fmov/umov),
        counts += scaled(OUT_NEON, outs) + scaled(epi, outs)   # n - 2*miss, convert, store
    else:
        counts += scaled(OUT, outs) + scaled(epi, outs)
    if layer.pad_value != 0:
        counts += padpop_counts(layer, h, w, ho, wo, nb, f, lp.tiling.interior_columns if px else None, px)
    if px:
        counts += lanes_counts(lp, target, g["rows"], out_stage)
    tp = lp.tiling.store_tile
    if out_stage is not None:
        st = out_stage[0]
        if vec_epi:                # xg_sign_bits: y stored, one compare per pixel
            pack = scaled({"store": 2, "vload": 1, "compare": 1, "logic": 2, "shift": 1, "load": 1},
                          nb * ho * pix)
        elif thresholds:
            pack = Counter()
        else:
            counts -= scaled({"store": 1}, outs)              # no float output: it is elided
            pack = scaled(EPI_PACK, outs)
        counts += pack + loop(ho * wo * st.words_per_pixel) + scaled({"store": 1}, ho * wo * st.words_per_pixel)
        if st.needs_amap:
            a_rows = scaled({"vlogic": 1}, nb * ho * pix) if vec_epi and tp else scaled(EPI_A, f * ho * wo)
            counts += a_rows + loop(2 * ho * wo) + scaled({"store": 1, "load": 1, "fdiv": 1}, ho * wo)
    if tp:                     # a tile row per pixel, then per tile its transpose in L x L blocks of
        # L float lanes (AVX-512: one 16x16, 64 shuffles; AVX2: four 8x8, 24 shuffles each) and a
        # store per filter and block, or A added per filter
        tiles, lanes_f = nb * -(-ho * wo // tp), float_vector_lanes(target)
        blocks = max(1, tp // lanes_f) * max(1, fb // lanes_f)
        shuffles = (4 if lanes_f >= 16 else 3) * lanes_f
        counts += scaled({"store": 1}, nb * ho * wo) + scaled({"vload": lanes_f, "vshuffle": shuffles}, tiles * blocks)
        if out_stage is None:              # (Counter subtraction drops what falls to 0 or below)
            counts += scaled({"store": lanes_f}, tiles * blocks)
            if not vec_epi:
                counts -= scaled({"store": 1}, outs)              # no scattered stores
        else:
            counts += scaled({"vload": 1, "vfadd": fb, "store": 1}, tiles)
            if not vec_epi:
                counts -= scaled(EPI_A, f * ho * wo)
    if not run:
        return None, counts
    v = _xnor_core(lp, consts, stage_in[0], kmap).reshape(f, ho * wo)
    if out_stage is None:
        return v.reshape(f, ho, wo), counts
    st, bn = out_stage
    y = bn_float32(v, bn)
    packed = pack_words(y, f, ho * wo, st.words_per_pixel, target.word_bits)
    return (packed, abs_mean(y, f, ho * wo) if st.needs_amap else None), counts


def lane_groups(ox0: int, ox1: int, px: int) -> list[int]:
    """Lane counts of the pixel-lane groups over interior columns [ox0, ox1) (the C's loop on g)."""
    return [px if ox1 - g > px // 2 else px // 2 for g in range(ox0, ox1, px)]


def lanes_counts(lp, target, rows: int, out_stage) -> Counter:
    """The interior columns of a pixel-lanes conv (kernel_conv2d_xnor.c.j2 `lanes`, the hook
    xg_xor_popcount_lanes): per group and 4 filters, each tap loads the group's input words (one
    vector per word_lanes outputs) and broadcasts 4 filter words, then xor, popcount and add per
    vector and filter; counts narrowed and stored; the float epilogue is vectorized over outputs."""
    layer = lp.layer
    fb, nb, px = lp.tiling.filter_block, lp.tiling.filter_blocks, lp.tiling.pixel_lanes
    kw, pf = layer.kernel[1] * lp.packing.words_per_pixel, LANE_FILTERS    # words per kernel row
    groups = lane_groups(*lp.tiling.interior_columns, px)
    wl, fl = word_lanes(target), float_vector_lanes(target)
    scalar = simd_kind(target) == "scalar"
    calls = nb * lp.out_shape[1] * (fb // pf)     # per group
    counts = loop(nb * lp.out_shape[1] * len(groups)) + loop(calls * len(groups) * pf)
    epi = epilogue(layer.scale_weight, layer.scale_input, layer.bias)
    for nl in groups:
        v = nl if scalar else -(-nl // wl)
        taps = nb * rows * kw * (fb // pf)
        if scalar:
            per_tap = scaled({"load": 1, "xor": 1, "popcount": 1, "add": 1}, pf * v) + Counter(load=pf)
        else:
            xs = lp.packing.words_per_pixel * layer.stride[1]     # 2: two loads and a permute per vector
            per_tap = Counter(vload=xs * v, vbcast=pf, vshuffle=(xs - 1) * v, vxor=pf * v, vpopcount=pf * v, vadd=pf * v)
        # counts narrowed to 32 bits and stored: one vpermt2d (or vpmovqd) and one store per filter
        stored = v if scalar else 1
        counts += scaled(per_tap, taps) + loop(taps) + scaled(CALL, calls) + scaled({"vshuffle": 1, "store": 1}, calls * pf * stored)
        fv = calls * pf * -(-nl // fl)               # float vectors of the epilogue
        counts += scaled({"vload": 1, "vadd": 2, "cvt": 1, "store": 1}, fv) + scaled(
            {"vfmul": epi.get("fmul", 0), "vfadd": epi.get("fadd", 0), "load_op": epi.get("load_op", 0)}, fv)
        if out_stage is not None:
            counts += scaled({"vfmul": 1, "vfadd": 2, "vlogic": 3, "load_op": 3}, fv) \
                + scaled({"load": 1, "logic": 2, "store": 1}, nb * lp.out_shape[1] * nl)
    return counts


def _xnor_core(lp, consts, packed, kmap):
    """Functional XOR-popcount over the plan's filter blocks; float32 epilogue as in the C
    ((float)(n - 2*miss) * alpha * K + bias). Padded taps with pad_value != 0 count the
    mismatches of the pad pixel's words, which is what the precomputed padpop holds."""
    layer = lp.layer
    c, h, w = lp.in_shapes[0]
    f, ho, wo = lp.out_shape
    kh, kw = layer.kernel
    wpp = lp.packing.words_per_pixel
    wts = unblock(consts["w"], lp.tiling, f, (kh, kw, wpp))
    yi, yin = tap_mask(h, kh, layer.stride[0], layer.padding[0], ho)
    xi, xin = tap_mask(w, kw, layer.stride[1], layer.padding[1], wo)
    pad = None
    if layer.pad_value != 0:      # the words of a padded pixel (bit 1 = -1 on the real channel bits)
        pad = pad_word_pattern(c, layer.pad_value, lp.packing.word_bits).astype(packed.dtype)
    miss = np.zeros((f, ho * wo), dtype=np.int64)
    nbits = np.zeros(ho * wo, dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            m = (yin[:, ky, None] & xin[None, :, kx]).reshape(-1)
            pix = (np.clip(yi[:, ky], 0, h - 1)[:, None] * w + np.clip(xi[:, kx], 0, w - 1)[None, :]).reshape(-1)
            xw = packed[pix]
            if pad is not None:
                xw = np.where(m[:, None], xw, pad[None, :])
            pc = np.bitwise_count(xw[None, :, :] ^ wts[:, ky, kx][:, None, :]).sum(axis=-1, dtype=np.int64)
            miss += pc if pad is not None else np.where(m[None], pc, 0)
            nbits += c if pad is not None else c * m
    out = (nbits[None] - 2 * miss).astype(F32)
    if layer.scale_weight:
        out = out * consts["alpha"].astype(F32)[:, None]
    if kmap is not None:
        out = out * kmap[None]
    if layer.bias:
        out = out + consts["bias"].astype(F32)[:, None]
    return out.reshape(f, ho, wo)


def unblock(words, tiling, n_out: int, per_out: tuple) -> np.ndarray:
    """Weights as [n_out, *per_out] from the plan's layout: plain [F][...] or, with a
    `filter_block` FB in the tiling, interleaved [F/FB][...][FB] (lowering.deinterleave_filters)."""
    fb = getattr(tiling, "filter_block", None)
    if not fb:
        return words.reshape(n_out, *per_out)
    return deinterleave_filters(words.reshape(-(-n_out // fb), *per_out, fb), n_out)
