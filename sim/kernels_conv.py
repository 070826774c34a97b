"""Simulated convolution kernels: templates/kernel_conv2d_{xnor,real}.c.j2 and the packing helpers.

Each kernel follows its LayerPlan (packing: words per pixel, layout; tiling: filter
tiles) and returns (output or None, Counter of operations). With run=False only
the counts are made (cheap: they are closed-form sums of the loop trip counts).
Functional runs work on the same packed words and in the same float32 operation
order as the C, so their outputs are bit-identical to it.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from xnorgen.packing import pad_word_pattern

from .loops import conv_taps, tap_mask
from .ops import float_lanes, loop, scaled

F32 = np.float32

# Instruction recipes per iteration of a loop level (classes: see ops.py). `load_op` is a load
# folded into the consuming instruction as a memory operand (costs a load, is no instruction).
# Calibrated by reading the x86-64 code gcc -O3 makes of the templates (docs/simulator.md).
PACK_BIT = {"load": 1, "compare": 2, "shift": 1, "logic": 1, "addr": 2}  # w |= !(x >= 0) << b
PACK_WORD = {"store": 1, "add": 2, "compare": 1}                       # nb, store the word
MEAN_ABS = {"load": 1, "load_op": 1, "logic": 1, "fadd": 1, "store": 1}  # a[p] += fabsf(in), per lane
BOX_TAP = {"compare": 2, "branch": 1, "add": 1}                        # bounds test per tap
BOX_IN = {"load": 1, "fadd": 1}                                        # in-bounds tap
XNOR_WORD = {"load": 1, "load_op": 1, "xor": 1, "popcount": 1, "add": 1}  # miss += popcount(x ^ w)
PAD_TAP = {"compare": 1, "logic": 1, "branch": 1}                      # inside ? pixel : padpix
FLOAT_TAP = {"load": 1, "load_op": 1, "fmul": 1, "fadd": 1, "addr": 2}  # acc += x * w
BWN_TAP = {"load": 2, "shift": 2, "logic": 2, "fadd": 1, "addr": 2, "compare": 1}  # acc += bit ? -x : x
ROW = {"add": 3, "compare": 2}                                         # row/col window bounds
STORE_OUT = {"store": 1, "addr": 3, "cvt": 1, "add": 2}                # n - 2*miss, convert, store


def static_taps(layer) -> bool:
    """True when the tap loops have constant bounds (no padding, or pad_value != 0 visits every
    tap): gcc then unrolls them and hoists the pixel pointers out of the filter loop."""
    return layer.pad_value != 0 or tuple(layer.padding) == (0, 0)


def epilogue(has_alpha: bool, has_k: bool, has_bias: bool) -> dict:
    """Per output value: the scale multiplies and bias add with their operand loads."""
    n_mul = int(has_alpha) + int(has_k)
    return {"fmul": n_mul, "fadd": int(has_bias), "load_op": n_mul + int(has_bias)}


def pack_chw(x, c: int, hw: int, wpp: int, word_bits: int, run: bool):
    """xg_pack_chw: channel c of pixel p -> bit c % wb of word p*wpp + c // wb (1 = negative)."""
    counts = scaled(PACK_BIT, c * hw) + loop(c * hw) + scaled(PACK_WORD, hw * wpp) + loop(hw * wpp) + loop(hw)
    if not run:
        return None, counts
    bits = np.zeros((hw, wpp * word_bits), dtype=np.uint8)
    bits[:, :c] = ~(x.reshape(c, hw).T >= 0)
    packed = np.packbits(bits.reshape(hw, wpp, word_bits // 8, 8), axis=-1, bitorder="little")
    dtype = np.dtype(f"<u{word_bits // 8}")
    return packed.reshape(hw, wpp * word_bits // 8).view(dtype).reshape(hw, wpp), counts


def channel_mean_abs(x, c: int, hw: int, run: bool, lanes: int = 1):
    """xg_channel_mean_abs: float32 running sum over channels, then one divide per pixel."""
    vec = -(-hw // lanes) * c            # vector iterations of the inner (pixel) loop
    counts = scaled(MEAN_ABS, vec) + loop(vec) + loop(c) + scaled({"store": 1}, hw) + loop(hw) \
        + scaled({"load": 1, "fdiv": 1, "store": 1}, hw) + loop(hw)
    if not run:
        return None, counts
    a = np.zeros(hw, dtype=F32)
    xs = x.reshape(c, hw)
    for ch in range(c):
        a = a + np.abs(xs[ch])
    return a / F32(c), counts


def box_mean(a, h, w, kernel, stride, padding, out_hw, run: bool):
    """xg_box_mean: K = zero-padded box mean of A over the kernel window, at the stride."""
    (kh, kw), (sh, sw), (ph, pw), (ho, wo) = kernel, stride, padding, out_hw
    inside = conv_taps((h, w), kernel, stride, padding, out_hw, 0)
    row_taps = conv_taps((h, 1), (kh, 1), (sh, 1), (ph, 0), (ho, 1), 0) * wo   # rows that pass the iy test
    counts = (scaled(BOX_TAP, ho * wo * kh) + loop(ho * wo * kh)          # ky loop, iy test
              + scaled(BOX_TAP, row_taps * kw) + loop(row_taps * kw)      # kx loop, ix test
              + scaled(BOX_IN, inside)
              + scaled({"fdiv": 1, "store": 1, "cvt": 1}, ho * wo) + loop(ho * wo) + loop(ho))
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


def _taps_loop(layer, h, w, ho, wo):
    """Taps visited over all outputs, and the tap-loop nest overhead (ky and kx loops)."""
    taps = conv_taps((h, w), layer.kernel, layer.stride, layer.padding, (ho, wo), layer.pad_value)
    kh = layer.kernel[0]
    rows = conv_taps((h, 1), (kh, 1), (layer.stride[0], 1), (layer.padding[0], 0), (ho, 1),
                     layer.pad_value) * wo
    return taps, rows


def xnor_conv(lp, target, consts, x, run: bool):
    """kernel_conv2d_xnor.c.j2: pack, A and K maps, then filter tile > oy > ox > f > taps > words."""
    layer, pk = lp.layer, lp.packing
    c, h, w = lp.in_shapes[0]
    f, ho, wo = lp.out_shape
    kh, kw = layer.kernel
    wpp, wb = pk["words_per_pixel"], pk["word_bits"]
    has_k, has_alpha = layer.scale_input, layer.scale_weight
    packed, counts = pack_chw(x, c, h * w, wpp, wb, run)
    kmap = None
    if has_k:
        amap, n1 = channel_mean_abs(x, c, h * w, run, float_lanes(target))
        kmap, n2 = box_mean(amap, h, w, layer.kernel, layer.stride, layer.padding, (ho, wo), run)
        counts += n1 + n2
    taps, tap_rows = _taps_loop(layer, h, w, ho, wo)
    tiles = lp.tiling["filter_blocks"]
    counts += loop(tiles) + scaled(ROW, ho * tiles) + loop(ho * tiles) + scaled(ROW, ho * wo * tiles) \
        + loop(ho * wo * tiles)
    counts += scaled(XNOR_WORD, f * taps * wpp)
    if layer.pad_value != 0:
        counts += scaled(PAD_TAP, f * taps)
    if not static_taps(layer):
        counts += loop(f * taps) + loop(f * tap_rows)
    counts += scaled(STORE_OUT, f * ho * wo) + scaled(epilogue(has_alpha, has_k, layer.bias), f * ho * wo) \
        + loop(f * ho * wo) + scaled({"addr": 1}, f * ho * wo)
    if not run:
        return None, counts
    return _xnor_core(lp, consts, packed, kmap), counts


def _xnor_core(lp, consts, packed, kmap):
    """Functional XOR-popcount over the plan's filter tiles; float32 epilogue as in the C."""
    layer = lp.layer
    c, h, w = lp.in_shapes[0]
    f, ho, wo = lp.out_shape
    kh, kw = layer.kernel
    wpp, tf = lp.packing["words_per_pixel"], lp.tiling["filter_block"]
    wts = unblock(consts["w"], lp.tiling, f, (kh, kw, wpp))
    yi, yin = tap_mask(h, kh, layer.stride[0], layer.padding[0], ho)
    xi, xin = tap_mask(w, kw, layer.stride[1], layer.padding[1], wo)
    pad = None
    if layer.pad_value != 0:      # the words of a padded pixel (bit 1 = -1 on the real channel bits)
        pad = pad_word_pattern(c, layer.pad_value, lp.packing["word_bits"]).astype(packed.dtype)
    miss = np.zeros((f, ho * wo), dtype=np.int64)
    nbits = np.zeros(ho * wo, dtype=np.int64)
    for f0 in range(0, f, tf):
        for ky in range(kh):
            for kx in range(kw):
                m = (yin[:, ky, None] & xin[None, :, kx]).reshape(-1)
                pix = (np.clip(yi[:, ky], 0, h - 1)[:, None] * w + np.clip(xi[:, kx], 0, w - 1)[None, :]).reshape(-1)
                xw = packed[pix]
                if pad is not None:
                    xw = np.where(m[:, None], xw, pad[None, :])
                pc = np.bitwise_count(xw[None, :, :] ^ wts[f0:f0 + tf, ky, kx][:, None, :]).sum(axis=-1, dtype=np.int64)
                miss[f0:f0 + tf] += pc if pad is not None else np.where(m[None], pc, 0)
                if f0 == 0:
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
    `filter_block` FB in the tiling, interleaved [F/FB][...][FB] with zero filters past F."""
    fb = (tiling or {}).get("filter_block")
    if not fb:
        return words.reshape(n_out, *per_out)
    blocks = -(-n_out // fb)
    w = words.reshape(blocks, *per_out, fb)
    return np.moveaxis(w, -1, 1).reshape(blocks * fb, *per_out)[:n_out]


def real_conv(lp, target, consts, x, run: bool):
    """kernel_conv2d_real.c.j2 (float and bwn): f > oy > ox > c > taps, one float accumulator."""
    layer = lp.layer
    c, h, w = lp.in_shapes[0]
    f, ho, wo = lp.out_shape
    taps, tap_rows = _taps_loop(layer, h, w, ho, wo)
    per_tap = BWN_TAP if layer.mode == "bwn" else FLOAT_TAP
    counts = loop(f) + scaled(ROW, f * ho) + loop(f * ho) + scaled(ROW, f * ho * wo) + loop(f * ho * wo)
    counts += loop(f * ho * wo * c) + scaled(per_tap, f * c * taps)
    if layer.pad_value != 0:
        counts += scaled(PAD_TAP, f * c * taps)
    if not static_taps(layer):
        counts += loop(f * c * taps) + loop(f * c * tap_rows)
    has_alpha = layer.mode != "float" and layer.scale_weight
    counts += scaled({"store": 1, "addr": 2}, f * ho * wo) + scaled(epilogue(has_alpha, False, layer.bias), f * ho * wo)
    if not run:
        return None, counts
    return _real_core(lp, target, consts, x, has_alpha), counts


def _real_core(lp, target, consts, x, has_alpha):
    """Float32 accumulation in the C's order: channel, then ky, then kx."""
    layer = lp.layer
    c, h, w = lp.in_shapes[0]
    f, ho, wo = lp.out_shape
    kh, kw = layer.kernel
    if layer.mode == "bwn":
        wb = target.word_bits
        words = consts["w"].reshape(f, -1)
        t = np.arange(c * kh * kw)
        bit = (words[:, t // wb] >> (t % wb).astype(words.dtype)) & words.dtype.type(1)
        wts = np.where(bit.astype(bool), F32(-1), F32(1)).reshape(f, c, kh, kw)
    else:
        wts = consts["w"].astype(F32).reshape(f, c, kh, kw)
    yi, yin = tap_mask(h, kh, layer.stride[0], layer.padding[0], ho)
    xi, xin = tap_mask(w, kw, layer.stride[1], layer.padding[1], wo)
    acc = np.zeros((f, ho, wo), dtype=F32)
    pv = F32(layer.pad_value)
    for ch in range(c):
        for ky in range(kh):
            for kx in range(kw):
                m = yin[:, ky, None] & xin[None, :, kx]
                v = x[ch][np.clip(yi[:, ky], 0, h - 1)[:, None], np.clip(xi[:, kx], 0, w - 1)[None, :]]
                v = np.where(m, v, pv)
                wt = wts[:, ch, ky, kx][:, None, None]
                term = np.where(wt < 0, -v[None], v[None]) if layer.mode == "bwn" else v[None] * wt
                acc = np.where(m[None], acc + term, acc) if layer.pad_value == 0 else acc + term
    if has_alpha:
        acc = acc * consts["alpha"].astype(F32)[:, None, None]
    if layer.bias:
        acc = acc + consts["bias"].astype(F32)[:, None, None]
    return acc
