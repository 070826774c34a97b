"""Tiling decisions: how many filters, outputs and columns each kernel takes together.

Pure functions of a target (its yaml) and a layer's geometry; the plan's plan_tiling pass calls
them and records what they return in LayerPlan.tiling (manifest.json), and codegen and the
simulator read it from there.
"""
from __future__ import annotations

from xnorgen.frontend.description import Conv2d
from xnorgen.target import Target

#: Filters per xnor pixel-lanes call (xg_xor_popcount_lanes; the AVX-512 hook keeps 4 x 2 vectors).
LANE_FILTERS = 4

#: Pixels per binarize-stage tile (xg_sign_tile; the AVX-512 hook takes one 16-float vector).
BINARIZE_TILE = 16

#: Partial sums of an xnor dense layer's beta = mean |x| (xg_pack_vector): input i goes to sum
#: i % SUM_LANES, in input order, then the sums are added pairwise. One running sum over 4096
#: inputs was a chain of dependent adds, 8 % of FC's time; the order is the semantics, so it is
#: fixed here for every target and the simulator follows it.
SUM_LANES = 16


def filter_block(target: Target) -> int:
    """Filters computed together per input word: the target's choice, else one vector of words
    (at least 4 for register reuse)."""
    return target.filter_block or max(4, target.vector_bits // target.word_bits)


def interior_columns(width: int, kw: int, sw: int, pw: int, out_w: int) -> tuple[int, int]:
    """Output columns [ox0, ox1) whose every tap is in bounds along x (no left or right padding)."""
    ox0 = min(-(-pw // sw), out_w)
    return ox0, min(max(ox0, (width + pw - kw) // sw + 1), out_w)


def column_runs(width: int, kw: int, sw: int, pw: int, cols) -> list[list[int]]:
    """The distinct in-bounds tap ranges [kx0, kx1) of output columns `cols` (most common first):
    each becomes one branch of the xnor conv with a compile-time run length."""
    seen: dict[tuple[int, int], int] = {}
    for ox in cols:
        i0 = ox * sw - pw
        k0 = max(0, -i0)
        key = (k0, max(k0, min(kw, width - i0)))
        seen[key] = seen.get(key, 0) + 1
    return [list(k) for k, _ in sorted(seen.items(), key=lambda kv: -kv[1])]


def float_block_vectors(target: Target) -> int:
    """Vector registers one float filter block takes (2 for AVX2's 16-filter blocks)."""
    return max(1, float_filter_block(target) * 32 // max(128, target.vector_bits))


def pixel_block(ox0: int, ox1: int, vectors: int = 1) -> int:
    """Interior outputs computed together by float/bwn convs: 8 accumulator vectors (they hide the
    add latency and leave registers for the weights), so 8 outputs of a one-vector filter block
    or 4 of a two-vector one; fewer on narrow images; 0 when fewer than 4 columns exist."""
    return next((pb for pb in (8, 4) if pb * vectors <= 8 and ox1 - ox0 >= pb), 0)


def pixel_lanes(target: Target, layer: Conv2d, wpp: int, ox0: int, ox1: int) -> int:
    """Interior outputs of an xnor conv computed as vector lanes (target.pixel_lanes at a time):
    one word per pixel, stride 1 (one load per 8 outputs), or stride 2 with a 1-wide kernel (two
    loads and a permute; the filter-lane path would do one word per call), and an interior of at
    least one group; else 0 (filters in the lanes). Measured on ResNet-18 (C harness): the 1x1
    stride-2 shortcut 0.081 -> 0.041 ms, but a 3x3 stride-2 conv 0.121 -> 0.147 ms, and two
    words per pixel 0.19 -> 0.28 ms (a 26-column interior wastes 6 of 32 lanes, permutes cost)."""
    px = target.pixel_lanes
    fits = wpp == 1 and (layer.stride[1] == 1 or (layer.stride[1] == 2 and layer.kernel[1] == 1))
    return px if px and fits and ox1 - ox0 >= px else 0


#: Fewest outputs per filter (HO x WO) for tile stores. On L3 (7 x 7 = 3 tiles and 1 output per
#: block) tiles measured slower interleaved with onnxruntime (12.0-14.1x against 13.5-14.6x
#: without): a flush's 16 runs miss together, and the last, 1-output tile pays a whole transpose.
#: (Prefetching the next flush's lines while a tile fills recovered half of that on L3 but cost
#: 3-4 % on a warm L1, so it is not done.)
MIN_TILE_PIXELS = 128


def store_tile(target: Target, lanes: int, per_filter_out: bool, pixels: int) -> int:
    """Outputs per transposed tile of an xnor conv's per-pixel path (target.store_tile): only
    where that path visits every output in raster order (no pixel lanes), has a value per filter
    and pixel to write out (floats, or the |y| a fused binarize epilogue adds to A), and at
    least MIN_TILE_PIXELS of them per filter."""
    ok = target.store_tile and not lanes and per_filter_out and pixels >= MIN_TILE_PIXELS
    return target.store_tile if ok else 0


def stream_prefetch(target: Target, weight_bytes: int) -> int:
    """Bytes ahead of an xnor dense layer's weight stream to prefetch (target.stream_prefetch):
    only if the weights are longer than that, else every prefetch would fall past their end."""
    ahead = target.stream_prefetch
    return ahead if ahead and weight_bytes > ahead else 0


def next_block_prefetch(target: Target, lanes: int, weight_bytes_per_block: int, pixels: int) -> int:
    """Lines of the next filter block's weights each output pixel of an xnor conv's per-pixel
    path prefetches (target.block_prefetch): only where the block has at least that many lines
    per pixel, i.e. few pixels to hide the next block's misses behind; 0: none."""
    lines = -(-weight_bytes_per_block // 64)
    on = target.block_prefetch and not lanes and lines >= target.block_prefetch * pixels
    return -(-lines // pixels) if on else 0


def float_filter_block(target: Target) -> int:
    """Filters computed together per input float: target.float_block, else one vector of float32
    lanes (at least 4: SSE2, NEON)."""
    return target.float_block or max(4, target.vector_bits // 32)


def column_groups(ox0: int, ox1: int, out_w: int, pb: int) -> tuple[list[int], list[int]]:
    """First columns of the float/bwn conv's pixel groups: [0, out_w) in steps of pb, the last
    group moved left to end at out_w (its overlap is recomputed, outputs are only written).
    Returns (interior groups, every column inside [ox0, ox1); border groups, which read
    zero-padded copies of their rows). Both empty without groups (pb = 0)."""
    if not pb:
        return [], []
    starts = sorted({min(g, out_w - pb) for g in range(0, out_w, pb)})
    inner = [g for g in starts if ox0 <= g and g + pb <= ox1]
    return inner, [g for g in starts if g not in inner]


#: Fewest outputs per filter (HO x WO) for a bwn conv to expand its masks (target.bwn_expand):
#: each filter block's C*KH*KW masks are expanded on every call, which the outputs must repay.
#: ab.py on avx512: 28x28 outputs 0.78 of the time; examples/digits_bwn (8x8 and 4x4) 1.07-1.11.
MIN_EXPAND_PIXELS = 128


def bwn_expand(target: Target, layer: Conv2d, out_shape) -> bool:
    """True if a bwn conv runs on its masks expanded into +-1.0 floats: the target's choice, on
    outputs of at least MIN_EXPAND_PIXELS pixels."""
    return bool(target.bwn_expand and layer.mode == "bwn" and out_shape[1] * out_shape[2] >= MIN_EXPAND_PIXELS)


def float_pixel_lanes(target: Target, layer: Conv2d, out_w: int, expand: bool = False) -> int:
    """Outputs per vector in a float conv (target.pixel_lanes, filters in blocks of that many too):
    float weights (float mode, or bwn with expand: tiling.bwn_expand), stride 1 or 2 along x (one
    load per tap: stride 2 reads split rows, split_columns) and at least one group of columns;
    else 0."""
    px = target.pixel_lanes
    float_weights = layer.mode == "float" or expand
    ok = (px and float_weights and layer.stride[1] in (1, 2) and out_w >= px
          and float_filter_block(target) == px)
    return px if ok else 0


def padded_input(layer: Conv2d, in_shape) -> list[int] | None:
    """Shape [C, H + 2*PH, W + 2*PW] of the zero-padded copy a float conv in pixel lanes makes of
    its input, so every group of columns and every row reads its whole window in place (a padded
    tap adds 0 * w, which changes no sum); with stride 2 along x the copy's rows are also split
    (split_columns). None when the conv can read its input as it is."""
    c, h, w = in_shape
    ph, pw = layer.padding
    return [c, h + 2 * ph, w + 2 * pw] if ph or pw or split_columns(layer) else None


def split_columns(layer: Conv2d) -> bool:
    """Stride 2 along x: each row of the padded copy holds its even columns, then its odd ones, so
    16 neighbouring outputs read one plain vector per tap instead of two loads and a permute
    (the stem: 10 % faster)."""
    return layer.stride[1] == 2
