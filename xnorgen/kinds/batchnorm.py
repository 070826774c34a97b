"""Kind batchnorm: y = (x - mean) * scale + beta per channel, scale = γ/√(var + ε) folded at
compile time. Usually folded away (into a binarize stage or a float conv's epilogue,
fusion.py); this is its standalone kernel. Template: kernel_batchnorm.c.j2; simulator:
sim/batchnorm.py.
"""
from __future__ import annotations

from math import prod

import numpy as np

from xnorgen.codegen.context import io_args
from xnorgen.codegen.lowering import Const
from xnorgen.kinds.base import Kind
from xnorgen.plan.ir import LayerPlan, Plan


def matches(layer) -> bool:
    return layer.type == "batchnorm"


def consts(lp: LayerPlan, target, plan=None) -> list[Const]:
    """mean, scale, beta: the golden model's order, so x == mean gives beta exactly."""
    p = lp.layer.params
    return [Const("mean", "float", p["mean"]),
            Const("scale", "float", p["gamma"] / np.sqrt(p["var"] + lp.layer.eps)),
            Const("beta", "float", p["beta"])]


def weight_bytes(lp: LayerPlan, target) -> dict:
    return {"float32": 16 * lp.out_shape[0], "packed": 12 * lp.out_shape[0]}   # γ β μ σ² -> μ, γ/σ, β


def context(lp: LayerPlan, plan: Plan) -> tuple[dict, list[str]]:
    s = lp.in_shapes[0]
    return {"C": s[0], "HW": prod(s[1:])}, io_args(lp, plan)


KIND = Kind("batchnorm", matches, context, consts=consts, weight_bytes=weight_bytes)
