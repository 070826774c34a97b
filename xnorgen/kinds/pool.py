"""Kind pool: max or average pooling over a window (contract: avg counts padded taps as the
contract defines). Template: kernel_pool.c.j2; simulator: sim/pool.py.
"""
from __future__ import annotations

from xnorgen.codegen.context import io_args, window
from xnorgen.kinds.base import Kind
from xnorgen.plan.ir import LayerPlan, Plan, Split


def matches(layer) -> bool:
    return layer.type in ("maxpool", "avgpool")


def context(lp: LayerPlan, plan: Plan) -> tuple[dict, list[str]]:
    k = window({"op": lp.layer.type}, lp.layer, lp.in_shapes[0], lp.out_shape)
    return k, io_args(lp, plan)


def split(plan: Plan, lp: LayerPlan) -> Split:
    """Channels (each plane pools on its own). Work: taps / 4."""
    c, ho, wo = lp.out_shape
    return Split("channels", c, c * ho * wo * lp.layer.kernel[0] * lp.layer.kernel[1] // 4)


KIND = Kind("pool", matches, context, split=split)
