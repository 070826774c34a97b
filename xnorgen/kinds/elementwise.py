"""Kind elementwise: one operation per value (relu, leaky_relu, sign, softmax, add of two tensors, and
flatten as a copy when it is the network output). Template: kernel_elementwise.c.j2;
simulator: sim/elementwise.py.
"""
from __future__ import annotations

from math import prod

from xnorgen.codegen.context import c_float, io_args
from xnorgen.kinds.base import Kind
from xnorgen.plan.ir import LayerPlan, Plan

#: The operation each layer type performs (flatten that must be materialized is a copy).
OPS = {"relu": "relu", "leaky_relu": "leaky_relu", "sign": "sign", "softmax": "softmax", "add": "add", "flatten": "copy"}


def matches(layer) -> bool:
    return layer.type in OPS


def context(lp: LayerPlan, plan: Plan) -> tuple[dict, list[str]]:
    k = {"op": OPS[lp.layer.type], "N": prod(lp.out_shape)}
    if lp.layer.type == "leaky_relu":
        k["SLOPE"] = c_float(lp.layer.slope)
    return k, io_args(lp, plan)


KIND = Kind("elementwise", matches, context)
