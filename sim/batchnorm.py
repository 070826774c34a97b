"""Simulated kind batchnorm: templates/kernel_batchnorm.c.j2, (x - mean) * scale + beta per value."""
from __future__ import annotations

from math import prod

from .binarize import bn_float32
from .ops import float_lanes, loop, scaled

BN_ELEM = {"load": 1, "fmul": 1, "fadd": 2, "store": 1}                # out = (in - mean[c]) * scale[c] + beta[c]


def batchnorm(lp, target, consts, x, run: bool):
    """kernel_batchnorm.c.j2: (x - mean) * scale + beta per channel."""
    s = lp.in_shapes[0]
    c, hw = s[0], prod(s[1:])
    vec = c * -(-hw // float_lanes(target))
    counts = loop(c) + scaled(BN_ELEM, vec) + loop(vec)
    if not run:
        return None, counts
    xs = x.reshape(c, hw)
    out = bn_float32(xs, consts)
    return out.reshape(s), counts
