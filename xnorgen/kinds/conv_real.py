"""Kind conv_real: a float or binary-weight (bwn) convolution on float inputs.

Plan: filters in blocks of float lanes (float_filter_block), weights [F/FB][C][KH][KW][FB]
floats or FB-bit sign masks per (block, tap); interior outputs in pixel blocks, or in pixel
lanes over a zero-padded copy of the input; a folded batchnorm/relu/residual/max-pool
epilogue (fusion.plan_epilogues). Everything in RealConvTiling. Template:
kernel_conv_real.c.j2; simulator: sim/conv_real.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

from xnorgen.codegen.context import io_args, pointer, window
from xnorgen.codegen.lowering import Const, interleave_filters, mask_bytes, scales_and_bias
from xnorgen.kinds.base import Geometry, Kind
from xnorgen.naming import const_prefix
from xnorgen.plan.ir import LayerPlan, Plan, Split, add_scratch, folded_pool
from xnorgen.plan.tiling import (bwn_expand, column_groups, float_block_vectors, float_filter_block,
                                 float_pixel_lanes, interior_columns, padded_input, pixel_block, split_columns)


@dataclass
class RealConvTiling:
    filter_block: int                 # filters per float block (FB)
    filter_blocks: int
    interior_columns: list[int]       # [ox0, ox1) (all columns when reading a padded copy)
    pixel_lanes: int                  # outputs per vector (0: filters in the lanes)
    pixel_block: int                  # interior outputs computed together (0: one at a time)
    padded_input: list[int] | None    # [C, H', W'] of its zero-padded input copy, if it makes one
    split_columns: bool               # the copy's rows hold even columns, then odd (stride 2)
    interior_groups: list[int]        # first columns of the groups inside [ox0, ox1)
    border_groups: list[int]          # ... and of the groups that read padded rows
    loop_order: str
    weight_layout: str
    bwn_expand: bool | None = None    # bwn: masks expanded to +-1.0 floats per block (None: no)
    pool_ring_rows: int | None = None  # folded max pool: rows of the conv's output ring


def matches(layer) -> bool:
    return layer.type == "conv2d" and layer.mode != "xnor"


def plan(plan: Plan, lp: LayerPlan) -> None:
    """The tiling record and the scratch it needs (padded copy, expanded weights, pool ring)."""
    layer, t = lp.layer, plan.target
    ffb = float_filter_block(t)
    expand = bwn_expand(t, layer, lp.out_shape)
    ox0, ox1 = interior_columns(lp.in_shapes[0][2], layer.kernel[1], layer.stride[1], layer.padding[1],
                                lp.out_shape[2])
    wo = lp.out_shape[2]
    px = float_pixel_lanes(t, layer, wo, expand)
    pb = 0 if px else pixel_block(ox0, ox1, float_block_vectors(t))
    padded = padded_input(layer, lp.in_shapes[0]) if px else None
    if padded:                  # every column reads the padded copy in place
        ox0, ox1 = 0, wo
    inner, border = column_groups(ox0, ox1, wo, px or pb)
    order = "filter block > out row > out col > channel > ky > kx > filter in block"
    if px:
        order = ("filter block > out row > group of pixel_lanes columns > channel > ky > kx > filter in block "
                 "(the group's columns in the lanes)")
    lp.tiling = RealConvTiling(
        filter_block=ffb, filter_blocks=-(-layer.filters // ffb), interior_columns=[ox0, ox1], pixel_lanes=px,
        pixel_block=pb, padded_input=padded, split_columns=bool(padded) and split_columns(layer),
        interior_groups=inner, border_groups=border, loop_order=order,
        weight_layout="[F/FB][C][KH][KW][FB] floats" if layer.mode == "float"
        else "[F/FB][C][KH][KW] masks of FB sign bits")
    if padded:
        add_scratch(plan, lp, "padded_input", 4 * prod(padded))
    if expand:
        lp.tiling.bwn_expand = True
        add_scratch(plan, lp, "bwn_weights", 4 * lp.in_shapes[0][0] * prod(layer.kernel) * ffb)
    pool = folded_pool(plan, lp)
    if pool is not None:          # the conv's rows go through a ring the pool reads
        add_scratch(plan, lp, "pool_ring", 4 * pool.kernel[0] * ffb * wo)
        lp.tiling.pool_ring_rows = pool.kernel[0]


def real_weights(layer, w: np.ndarray, fb: int) -> list[Const]:
    """float: weights [F/FB][fan-in][FB]; bwn: one FB-bit sign mask per (block, fan-in element);
    then alpha (bwn with scale_weight) and bias. Shared with kind dense."""
    flat = w.reshape(w.shape[0], -1)
    if layer.mode == "float":
        out = [Const("w", "float", interleave_filters(flat, fb).reshape(-1))]
    else:
        neg = interleave_filters((flat < 0).astype(np.uint64), fb)            # [NB, fan-in, FB]
        masks = (neg << np.arange(fb, dtype=np.uint64)).sum(axis=-1, dtype=np.uint64)
        out = [Const("w", "mask", masks.reshape(-1))]
    return out + scales_and_bias(layer, w)


def real_weight_bytes(layer, n_out: int, fan_in: int, fb: int, target) -> dict:
    """Bytes of real_weights' arrays, from shapes alone. Shared with kind dense."""
    bias = 4 * n_out if layer.bias else 0
    f32 = 4 * n_out * fan_in + bias
    if layer.mode == "float":
        return {"float32": f32, "packed": 4 * -(-n_out // fb) * fb * fan_in + bias}
    masks = -(-n_out // fb) * fan_in * mask_bytes(target)
    return {"float32": f32, "packed": masks + (4 * n_out if layer.scale_weight else 0) + bias}


def consts(lp: LayerPlan, target, plan=None) -> list[Const]:
    return real_weights(lp.layer, lp.layer.params["weight"], lp.tiling.filter_block)


def weight_bytes(lp: LayerPlan, target) -> dict:
    layer = lp.layer
    return real_weight_bytes(layer, layer.filters, lp.in_shapes[0][0] * prod(layer.kernel),
                             lp.tiling.filter_block, target)


def context(lp: LayerPlan, plan: Plan) -> tuple[dict, list[str]]:
    """Its epilogue (folded batchnorm/relu), a folded pool's window, a padded copy's geometry."""
    layer, tl, net = lp.layer, lp.tiling, plan.net
    k = window({}, layer, lp.in_shapes[0], lp.out_shape)
    args = io_args(lp, plan)
    post = [{"name": plan.ident(n), "op": net.layer(n).type, "sym": const_prefix(net.name, plan.ident(n))}
            for n in lp.epilogue if net.layer(n).type != "maxpool"]
    k.update(F=layer.filters, pad_value=layer.pad_value, has_bias=layer.bias,
             has_alpha=layer.mode != "float" and layer.scale_weight,
             OX0=tl.interior_columns[0], OX1=tl.interior_columns[1], FB=tl.filter_block, NB=tl.filter_blocks,
             post=post, pixel_block=tl.pixel_block, interior_groups=tl.interior_groups,
             border_groups=tl.border_groups, pixel_lanes=tl.pixel_lanes,
             pool=None, padin=None, expand=bool(tl.bwn_expand))
    pool = folded_pool(plan, lp)
    if pool is not None:            # the conv's rows go to a ring the pool reads
        k["pool"] = window({"name": plan.ident(pool.name)}, pool, lp.out_shape, net.shapes[pool.name])
        args.append(pointer(plan, lp.scratch["pool_ring"], False))
    if tl.padded_input:             # the kernel reads its zero-padded copy, in place
        c, hp, wp = tl.padded_input
        k["padin"] = {"H": k["H"], "W": k["W"], "PH": k["PH"], "PW": k["PW"],
                      "HALF": (wp + 1) // 2 if tl.split_columns else 0}
        k.update(H=hp, W=wp, PH=0, PW=0)
        args.append(pointer(plan, lp.scratch["padded_input"], False))
    if k["expand"]:                 # the block's masks as +-1.0 floats
        args.append(pointer(plan, lp.scratch["bwn_weights"], False))
    return k, args


def geometry(lp: LayerPlan) -> Geometry:
    return Geometry(lp.layer.filters, lp.in_shapes[0][0], prod(lp.layer.kernel), lp.out_shape[1] * lp.out_shape[2])


def split(plan: Plan, lp: LayerPlan) -> Split | None:
    """Output rows, after a serial prologue that makes the padded copy. Not split: a folded pool
    (its ring of rows is per call) and expanded bwn weights (one block's buffer, rewritten per
    block). Work: multiply-adds / 8 (a vector of them per cycle)."""
    if lp.tiling.bwn_expand or folded_pool(plan, lp) is not None:
        return None
    g = geometry(lp)
    return Split("output rows", lp.out_shape[1], g.weights * g.pixels // 8, prologue=bool(lp.tiling.padded_input))


KIND = Kind("conv_real", matches, context, plan, consts, weight_bytes, geometry, split)
