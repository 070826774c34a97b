"""Kind dense: a fully connected layer, float, bwn or xnor.

Plan: units in blocks; xnor packs the whole input flat (one bit per input, a scratch buffer of
words) and streams weights [U/FB][words][FB] with an optional prefetch distance; float/bwn
weights as conv_real's, fan-in = all inputs. Template: kernel_dense.c.j2; simulator:
sim/dense.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

from xnorgen.codegen.context import io_args, pointer
from xnorgen.codegen.lowering import Const, interleave_filters, scales_and_bias
from xnorgen.kinds.base import Geometry, Kind
from xnorgen.kinds.conv_real import real_weight_bytes, real_weights
from xnorgen.packing import pack_signs, words_for
from xnorgen.plan.ir import LayerPlan, Packing, Plan, Split, add_scratch
from xnorgen.plan.tiling import filter_block, float_filter_block, stream_prefetch


@dataclass
class DenseTiling:
    filter_block: int                 # units per block
    filter_blocks: int
    loop_order: str
    weight_layout: str | None = None  # float/bwn (xnor: in its Packing record)
    prefetch_bytes: int | None = None  # xnor: bytes ahead of the weight stream to prefetch (0: none)


def matches(layer) -> bool:
    return layer.type == "dense"


def plan(plan: Plan, lp: LayerPlan) -> None:
    layer, t = lp.layer, plan.target
    if layer.mode == "xnor":
        n, wb = prod(lp.in_shapes[0]), t.word_bits
        lp.packing = Packing("flat", wb, "inputs", n, words_for(n, wb), n % wb,
                             "[U/FB][words][FB], units past U zero")
        add_scratch(plan, lp, "packed", words_for(n, wb) * t.word_bytes)
        fb = filter_block(t)
        blocks = -(-layer.units // fb)
        lp.tiling = DenseTiling(fb, blocks, "unit block > word > unit in block", prefetch_bytes=stream_prefetch(
            t, blocks * fb * lp.packing.words_per_pixel * t.word_bytes))
    else:
        ffb = float_filter_block(t)
        lp.tiling = DenseTiling(ffb, -(-layer.units // ffb), "unit block > input > unit in block",
                                weight_layout="[F/FB][N][FB] floats" if layer.mode == "float"
                                else "[F/FB][N] masks of FB sign bits")


def consts(lp: LayerPlan, target, plan=None) -> list[Const]:
    layer, w = lp.layer, lp.layer.params["weight"]
    if layer.mode != "xnor":
        return real_weights(layer, w, lp.tiling.filter_block)
    packed = pack_signs(w, target.word_bits)
    out = [Const("w", "word", interleave_filters(packed, lp.tiling.filter_block).reshape(-1))]
    return out + scales_and_bias(layer, w)


def weight_bytes(lp: LayerPlan, target) -> dict:
    layer, fan_in, fb = lp.layer, prod(lp.in_shapes[0]), lp.tiling.filter_block
    if layer.mode != "xnor":
        return real_weight_bytes(layer, layer.units, fan_in, fb, target)
    n = layer.units
    words = -(-n // fb) * fb * words_for(fan_in, target.word_bits)
    extra = (4 * n if layer.scale_weight else 0) + (4 * n if layer.bias else 0)
    return {"float32": 4 * n * fan_in + (4 * n if layer.bias else 0), "packed": words * target.word_bytes + extra}


def context(lp: LayerPlan, plan: Plan) -> tuple[dict, list[str]]:
    layer, n = lp.layer, prod(lp.in_shapes[0])
    k = {"N": n, "U": layer.units, "NW": -(-n // plan.target.word_bits), "NB": lp.tiling.filter_blocks,
         "FFB": lp.tiling.filter_block, "has_bias": layer.bias,
         "has_alpha": layer.mode != "float" and layer.scale_weight,
         "has_k": layer.mode == "xnor" and layer.scale_input}
    args = io_args(lp, plan)
    # hosted targets with batch_dense: a batch variant (<name>_infer_batch), one pointer per sample
    # for each argument
    k["batch_arg_types"] = ["const float *", "float *"] if plan.target.hosted and plan.target.batch_dense else None
    if layer.mode == "xnor":
        k["prefetch_bytes"] = lp.tiling.prefetch_bytes
        args.append(pointer(plan, lp.scratch["packed"], False, "xg_word_t"))
        if k["batch_arg_types"]:
            k["batch_arg_types"].append("xg_word_t *")
    return k, args


def geometry(lp: LayerPlan) -> Geometry:
    return Geometry(lp.layer.units, prod(lp.in_shapes[0]), 1, 1)


def split(plan: Plan, lp: LayerPlan) -> Split:
    """Unit blocks. xnor: a serial prologue packs the input once, and with scale_input leaves
    beta in 4 more bytes of the packed scratch for the parts to read. Work: word operations
    (xnor), multiply-adds / 8 (float, bwn)."""
    layer, g = lp.layer, geometry(lp)
    if layer.mode != "xnor":
        return Split("unit blocks", lp.tiling.filter_blocks, g.weights // 8)
    if layer.scale_input:
        plan.buffers[lp.scratch["packed"]].nbytes += 4
    return Split("unit blocks", lp.tiling.filter_blocks, layer.units * lp.packing.words_per_pixel, prologue=True)


KIND = Kind("dense", matches, context, plan, consts, weight_bytes, geometry, split)
