"""Kind pool: max or average pooling over a window (contract: avg counts padded taps as the
contract defines). Template: kernel_pool.c.j2; simulator: sim/pool.py.

A max pool that fusion runs on bits (LayerPlan.bit_pool: an xnor conv's epilogue packs the
signs of the next batchnorm's outputs, unpooled, and the pool reads those words) combines the
words of its window with AND and OR: with bit 1 = negative, the batchnorm of a max is negative
where all taps are (AND) for channels whose batchnorm scale is >= 0, and where any tap is (OR)
for channels whose scale is < 0 (the batchnorm reverses the order there). The constant `neg`
holds those channels' bits.
"""
from __future__ import annotations

from xnorgen.codegen.context import io_args, pointer, window
from xnorgen.codegen.lowering import Const
from xnorgen.kinds import batchnorm as KINDS_BN
from xnorgen.kinds.base import Kind
from xnorgen.packing import pack_signs, words_for
from xnorgen.plan.ir import LayerPlan, Plan, Split


def matches(layer) -> bool:
    return layer.type in ("maxpool", "avgpool")


def consts(lp: LayerPlan, target, plan=None) -> list[Const]:
    """A bit pool's `neg`: the packed channels whose batchnorm scale is < 0 (pack_signs' bit)."""
    if not lp.bit_pool:
        return []
    assert plan is not None, "a bit pool: pass the plan to layer_consts"
    bn = plan.layer_plan(plan.binarize[lp.bit_pool].bn)
    scale = next(c.values for c in KINDS_BN.consts(bn, target) if c.suffix == "scale")
    return [Const("neg", "word", pack_signs(scale, target.word_bits).reshape(-1))]


def weight_bytes(lp: LayerPlan, target) -> dict | None:
    if not lp.bit_pool:
        return None
    return {"float32": 0, "packed": words_for(lp.in_shapes[0][0], target.word_bits) * target.word_bytes}


def context(lp: LayerPlan, plan: Plan) -> tuple[dict, list[str]]:
    k = window({"op": lp.layer.type, "bits": None}, lp.layer, lp.in_shapes[0], lp.out_shape)
    if not lp.bit_pool:
        return k, io_args(lp, plan)
    st = plan.binarize[lp.bit_pool]
    k["bits"] = {"stage": st.name, "bn": plan.ident(st.bn), "WPP": st.words_per_pixel}
    return k, [pointer(plan, st.prepool, True, "xg_word_t"), pointer(plan, st.packed, False, "xg_word_t")]


def split(plan: Plan, lp: LayerPlan) -> Split:
    """Channels (each plane pools on its own); a bit pool by output rows (a word holds many
    channels). Work: taps / 4 (words for a bit pool)."""
    c, ho, wo = lp.out_shape
    taps = ho * wo * lp.layer.kernel[0] * lp.layer.kernel[1]
    if lp.bit_pool:
        return Split("output rows", ho, taps * plan.binarize[lp.bit_pool].words_per_pixel)
    return Split("channels", c, c * taps // 4)


KIND = Kind("pool", matches, context, consts=consts, weight_bytes=weight_bytes, split=split)
