"""Simulated kind elementwise: templates/kernel_elementwise.c.j2 (relu, leaky_relu, sign, add,
copy, softmax)."""
from __future__ import annotations

from math import prod

import numpy as np

from .conv_xnor import F32
from .ops import float_lanes, loop, scaled

#: Operations per vector of values, by op (gcc vectorizes each loop; leaky_relu: multiply, compare, blend).
ELEM = {"relu": {"load": 1, "fmax": 1, "store": 1},
        "leaky_relu": {"load": 1, "fmul": 1, "compare": 1, "logic": 1, "store": 1},
        "sign": {"load": 1, "compare": 1, "logic": 1, "store": 1},
        "add": {"load": 1, "load_op": 1, "fadd": 1, "store": 1}, "copy": {"load": 1, "store": 1}}


def elementwise(lp, target, consts, ins, run: bool, op: str):
    """kernel_elementwise.c.j2: relu, leaky_relu, sign, add, copy (flatten as output), softmax."""
    n = prod(lp.out_shape)
    if op == "softmax":
        counts = scaled({"load": 1, "fmax": 1}, n) + scaled({"load": 1, "fadd": 2, "exp": 1, "store": 1}, n) \
            + scaled({"load": 1, "fdiv": 1, "store": 1}, n) + loop(3 * n)
    else:
        vec = -(-n // float_lanes(target)) if op != "copy" else -(-n // 8)   # memcpy moves 32 B per step
        counts = scaled(ELEM[op], vec) + loop(vec)
    if not run:
        return None, counts
    x = ins[0].reshape(-1)
    if op == "relu":
        out = np.where(x > 0, x, F32(0))
    elif op == "leaky_relu":          # the C's float32 product with the slope as a float32 literal
        out = np.where(x >= 0, x, F32(lp.layer.slope) * x)
    elif op == "sign":
        out = np.where(x >= 0, F32(1), F32(-1))
    elif op == "add":
        out = x + ins[1].reshape(-1)
    elif op == "copy":
        out = x.copy()
    else:
        out = _softmax(x)
    return out.reshape(lp.out_shape), counts


def _softmax(x):
    """Max, expf and a sequential float32 sum, as the C does (expf may differ by an ulp)."""
    mx = x[0]
    for v in x[1:]:
        mx = v if v > mx else mx
    e = np.exp(x - mx).astype(F32)
    s = F32(0)
    for v in e:
        s = F32(s + v)
    return e / s
