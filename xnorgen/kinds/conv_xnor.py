"""Kind conv_xnor: a binary convolution on packed signs (the paper's XNOR-Net conv).

Plan: reads the HWC-packed words (and A) its binarize stage writes; filters in register blocks
of filter_block with weights interleaved [F/FB][KH][KW][words][FB]; interior columns in pixel
lanes where the target has them; every loop bound in XnorConvTiling. Lowering: packed sign
words (packing.pack_signs, channels per tap), the popcount of the padding pattern per filter
and tap when pad_value != 0, α. Template: kernel_conv_xnor.c.j2; simulator: sim/conv_xnor.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

from xnorgen.codegen.context import pointer, window
from xnorgen.codegen.lowering import Const, interleave_filters, scales_and_bias
from xnorgen.kinds import batchnorm as KINDS_BN
from xnorgen.kinds.base import Geometry, Kind
from xnorgen.naming import const_prefix, stage_name
from xnorgen.packing import pack_signs, pad_word_pattern, popcount, words_for
from xnorgen.plan.fusion import residual_of
from xnorgen.plan.ir import LayerPlan, Packing, Plan, Split, add_scratch
from xnorgen.plan.tiling import (LANE_FILTERS, column_runs, filter_block, interior_columns, next_block_prefetch,
                                 pixel_lanes, store_tile)


@dataclass
class ColumnRange:
    """Output columns [lo, hi) of the per-pixel path and the tap ranges [kx0, kx1) they meet."""
    columns: list[int]
    runs: list[list[int]]


@dataclass
class XnorConvTiling:
    filter_block: int                 # filters per register block (FB)
    filter_blocks: int                # ceil(F / FB)
    weight_bytes_per_block: int
    loop_order: str
    interior_run_words: int           # words one interior row of taps reads: KW * words per pixel
    interior_columns: list[int]       # [ox0, ox1): columns whose taps are all in bounds along x
    pixel_lanes: int                  # interior outputs per vector (0: filters in the lanes)
    column_ranges: list[ColumnRange]
    store_tile: int                   # outputs per transposed tile store (0: none)
    next_block_prefetch: int          # lines of the next block prefetched per output pixel
    # The fused binarize stage's bit of each output as an integer compare of its mismatch count
    # (thresholds: issue 19): set where the decision depends on the count alone (no K, no A,
    # the same valid bits n at every pixel) and the per-pixel path runs (no pixel lanes).
    sign_thresholds: bool = False


def matches(layer) -> bool:
    return layer.type == "conv2d" and layer.mode == "xnor"


def plan(plan: Plan, lp: LayerPlan) -> None:
    """Packing of its input (from its binarize stage), K scratch, and the tiling record."""
    layer, t = lp.layer, plan.target
    st = plan.binarize[lp.binarize_in]
    wb = t.word_bits
    lp.packing = Packing("HWC, channels packed", wb, "channels", st.channels, st.words_per_pixel,
                         st.channels % wb, "[F/FB][KH][KW][words][FB], filters past F zero",
                         pad_value=layer.pad_value, binarize_stage=st.name)
    if layer.scale_input:
        add_scratch(plan, lp, "kmap", 4 * lp.out_shape[1] * lp.out_shape[2])
    fb, wpp = filter_block(t), st.words_per_pixel
    per_filter = prod(layer.kernel) * wpp * t.word_bytes
    ox0, ox1 = interior_columns(lp.in_shapes[0][2], layer.kernel[1], layer.stride[1], layer.padding[1],
                                lp.out_shape[2])
    lanes = lanes_of(t, lp)
    pixels = lp.out_shape[1] * lp.out_shape[2]
    floats_out = not lp.binarize_out or plan.binarize[lp.binarize_out].needs_amap
    order = "filter block > out row > out col > ky > (kx, word) > filter in block"
    if lanes:
        order = (f"filter block > out row > {{interior: groups of pixel_lanes columns > filter in block, "
                 f"{LANE_FILTERS} at a time > ky > kx > pixel lane; border columns: ky > kx > filter in block}}")
    lp.tiling = XnorConvTiling(
        filter_block=fb, filter_blocks=-(-layer.filters // fb), weight_bytes_per_block=fb * per_filter,
        loop_order=order, interior_run_words=layer.kernel[1] * wpp, interior_columns=[ox0, ox1],
        pixel_lanes=lanes, column_ranges=_column_ranges(lp, ox0, ox1, lanes),
        store_tile=store_tile(t, lanes, floats_out, pixels),
        next_block_prefetch=next_block_prefetch(t, lanes, fb * per_filter, pixels),
        sign_thresholds=thresholds_apply(t, lp, floats_out))


def lanes_of(target, lp: LayerPlan) -> int:
    """Its pixel lanes (tiling.pixel_lanes), from its shapes alone."""
    layer, (c, _, w) = lp.layer, lp.in_shapes[0]
    ox0, ox1 = interior_columns(w, layer.kernel[1], layer.stride[1], layer.padding[1], lp.out_shape[2])
    return pixel_lanes(target, layer, words_for(c, target.word_bits), ox0, ox1)


def count_decides(target, lp: LayerPlan) -> bool:
    """Whether its output bits would be integer compares of its counts if it packed a stage that
    needs no A: no K, the same number of valid bits at every pixel (pad_value +-1, or no padding),
    and the per-pixel path (no pixel lanes). Fusion asks before running a max pool on bits, which
    pays only with thresholds (benchmarks/RESULTS.md, "The binary path")."""
    layer = lp.layer
    return (not layer.scale_input and (layer.pad_value != 0 or tuple(layer.padding) == (0, 0))
            and not lanes_of(target, lp))


def thresholds_apply(target, lp: LayerPlan, floats_out: bool) -> bool:
    """Whether it sets its fused stage's bits by sign thresholds: it packs that stage, the stage
    needs no A (floats_out false), and the count decides (count_decides)."""
    return bool(lp.binarize_out) and not floats_out and count_decides(target, lp)


def _column_ranges(lp: LayerPlan, ox0: int, ox1: int, lanes: int) -> list[ColumnRange]:
    """The per-pixel loops: output columns [lo, hi) (all of them, or the borders around the
    pixel-lane interior) with the tap ranges ("runs") they meet."""
    layer, wo = lp.layer, lp.out_shape[2]
    spans = [(0, ox0), (ox1, wo)] if lanes else [(0, wo)]
    return [ColumnRange([lo, hi], column_runs(lp.in_shapes[0][2], layer.kernel[1], layer.stride[1],
                                              layer.padding[1], range(lo, hi)))
            for lo, hi in spans if hi > lo]


def consts(lp: LayerPlan, target, plan=None) -> list[Const]:
    """w: packed signs [F/FB][KH][KW][words][FB]; padpop (pad_value != 0); alpha; bias; with
    sign thresholds, thr and inv (sign_thresholds)."""
    layer = lp.layer
    w = layer.params["weight"]
    packed = pack_signs(w.transpose(0, 2, 3, 1), target.word_bits)       # channels packed per tap
    out = [Const("w", "word", interleave_filters(packed, lp.tiling.filter_block).reshape(-1))]
    if layer.pad_value != 0:
        pad = pad_word_pattern(w.shape[1], layer.pad_value, target.word_bits)
        out.append(Const("padpop", "int", popcount(packed ^ pad).sum(axis=-1).reshape(-1)))
    out += scales_and_bias(layer, w)
    if lp.tiling.sign_thresholds:
        assert plan is not None, "conv_xnor with sign thresholds: pass the plan to layer_consts"
        bn = plan.layer_plan(plan.binarize[lp.binarize_out].bn)
        thr, inv = sign_thresholds(lp, out, {c.suffix: c.values for c in KINDS_BN.consts(bn, target)})
        out += [Const("thr", "int", thr), Const("inv", "int", inv)]
    return out


def sign_thresholds(lp: LayerPlan, own: list[Const], bn: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per filter (thr, inv) with !(y >= 0) == ((miss >= thr) ^ inv) for every mismatch count
    miss in [0, n], y the fused epilogue's float32 value: v = (float)(n - 2 miss) * alpha + bias,
    y = (v - mean) * scale + beta, each operation rounded to float32 as the C does it. Every
    count is evaluated, so the compare reproduces the float decision exactly (float rounding keeps
    y monotone in miss, so the decisions are a step; anything else is a bug, asserted)."""
    layer = lp.layer
    n = lp.in_shapes[0][0] * layer.kernel[0] * layer.kernel[1]
    f32 = np.float32
    miss = np.arange(n + 1)
    v = (n - 2 * miss).astype(f32)[None, :]
    c = {k.suffix: k.values.astype(f32)[:, None] for k in own if k.suffix in ("alpha", "bias")}
    if "alpha" in c:
        v = v * c["alpha"]
    if "bias" in c:
        v = v + c["bias"]
    y = (v - bn["mean"].astype(f32)[:, None]) * bn["scale"].astype(f32)[:, None] + bn["beta"].astype(f32)[:, None]
    bit = ~(y >= 0)                                      # [F, n + 1]
    inv = bit[:, 0].astype(np.int64)                     # the bit at miss = 0 is inv
    flips = np.diff(bit.astype(np.int8), axis=1)
    assert np.all(flips * (1 - 2 * inv[:, None]) >= 0), "a sign decision is not a step in the count"
    changed = bit != bit[:, :1]
    thr = np.where(changed.any(axis=1), changed.argmax(axis=1), n + 1)   # first count whose bit differs
    return thr.astype(np.int64), inv


def weight_bytes(lp: LayerPlan, target) -> dict:
    layer = lp.layer
    n, taps = layer.filters, prod(layer.kernel)
    extra = 4 * n if layer.bias else 0
    f32 = 4 * n * lp.in_shapes[0][0] * taps + extra
    fb = lp.tiling.filter_block
    words = -(-n // fb) * fb * taps * words_for(lp.in_shapes[0][0], target.word_bits)
    padpop = 4 * n * taps if layer.pad_value != 0 else 0      # int32 per filter and tap
    extra += 4 * n if layer.scale_weight else 0
    extra += 8 * n if lp.tiling is not None and lp.tiling.sign_thresholds else 0    # thr, inv: int32
    return {"float32": f32, "packed": words * target.word_bytes + padpop + extra}


def context(lp: LayerPlan, plan: Plan) -> tuple[dict, list[str]]:
    """It reads its stage's packed words (and A) and writes floats or, with an epilogue stage,
    the packed words (and A) of the next layer (plus a folded residual add)."""
    layer, tl = lp.layer, lp.tiling
    k = window({}, layer, lp.in_shapes[0], lp.out_shape)
    st = plan.binarize[lp.binarize_in]
    k.update(F=layer.filters, pad_value=layer.pad_value, has_bias=layer.bias, has_alpha=layer.scale_weight,
             OX0=tl.interior_columns[0], OX1=tl.interior_columns[1], WPP=lp.packing.words_per_pixel,
             FB=tl.filter_block, NB=tl.filter_blocks, has_k=layer.scale_input, out_stage=None,
             pixel_lanes=tl.pixel_lanes, column_ranges=[vars(r) for r in tl.column_ranges], residual=None,
             store_tile=tl.store_tile, prefetch_lines=tl.next_block_prefetch)
    args = [pointer(plan, st.packed, True, "xg_word_t")]
    if layer.scale_input:
        args += [pointer(plan, st.amap, True), pointer(plan, lp.scratch["kmap"], False)]
    if lp.binarize_out:
        out = plan.binarize[lp.binarize_out]
        bn_ident = plan.ident(out.bn)
        k["out_stage"] = {"stage": stage_name(plan.ident(out.tensor)), "bn": bn_ident,
                          "bn_sym": const_prefix(plan.net.name, bn_ident),
                          "WPP": out.words_per_pixel, "has_a": out.needs_amap,
                          "thresholds": tl.sign_thresholds, "pool": out.pool and plan.ident(out.pool)}
        args.append(pointer(plan, out.prepool or out.packed, False, "xg_word_t"))   # a bit pool runs after
        if out.needs_amap:
            args.append(pointer(plan, out.amap, False))
    else:
        args.append(pointer(plan, lp.output, False))
        res = residual_of(plan, lp)
        if res is not None:           # a folded residual add: out = conv + res
            args.append(pointer(plan, plan.storage[res], True))
            k["residual"] = lp.epilogue[0]
    return k, args


def geometry(lp: LayerPlan) -> Geometry:
    return Geometry(lp.layer.filters, lp.in_shapes[0][0], prod(lp.layer.kernel), lp.out_shape[1] * lp.out_shape[2])


def split(plan: Plan, lp: LayerPlan) -> Split:
    """Output rows: a part computes every filter block of its rows (K, the output stage's words
    and A included), so the parts write disjoint pixels. Work: word operations."""
    g, wpp = geometry(lp), lp.packing.words_per_pixel
    return Split("output rows", lp.out_shape[1], g.filters * g.pixels * g.taps * wpp)


KIND = Kind("conv_xnor", matches, context, plan, consts, weight_bytes, geometry, split)
