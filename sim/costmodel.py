"""First-order cost model of the generated kernels: operation counts by class -> cycles.

Counts follow the loop nests of templates/kernel_*.c.j2 (every tap of every
output, including the exact number of in-bounds taps at borders); cycles are
sum(count[class] * target.costs[class]), reciprocal throughputs with no overlap
between classes, no caches and no branch misses. It is what manifest.json's
"predicted" fields hold; the full simulator refines it.
"""
from __future__ import annotations

from collections import Counter
from math import prod

from xnorgen.description import BatchNorm, Conv2d, Dense, Pool

from .paper import layer_clocks


def _valid_taps(size: int, k: int, s: int, p: int, out: int) -> int:
    """Sum over output positions along one axis of the number of in-bounds taps."""
    return sum(min(k, size - (o * s - p)) - max(0, p - o * s) for o in range(out))


def layer_counts(lp, target) -> Counter:
    layer, n = lp.layer, Counter()
    out = prod(lp.out_shape)
    if isinstance(layer, Conv2d):
        c, h, w = lp.in_shapes[0]
        f, ho, wo = lp.out_shape
        kh, kw = layer.kernel
        if layer.pad_value == 0:
            taps = _valid_taps(h, kh, layer.stride[0], layer.padding[0], ho) * \
                _valid_taps(w, kw, layer.stride[1], layer.padding[1], wo)
        else:
            taps = ho * wo * kh * kw
        if layer.mode == "xnor":
            words = f * taps * lp.packing["words_per_pixel"]
            n.update(load=2 * words, xor=words, popcount=words, add=words)
            n.update(compare=c * h * w, add_pack=c * h * w)     # binarize + pack
            if layer.scale_input:
                n.update(fadd=c * h * w + ho * wo * kh * kw, fmul=ho * wo)
        else:
            macs = f * c * taps
            n.update(load=2 * macs, fadd=macs, fmul=macs if layer.mode == "float" else 0)
        n.update(fmul=out * 2, fadd=out, store=out)
    elif isinstance(layer, Dense):
        fan_in = prod(lp.in_shapes[0])
        if layer.mode == "xnor":
            words = layer.units * lp.packing["words_per_pixel"]
            n.update(load=2 * words, xor=words, popcount=words, add=words, compare=fan_in, fadd=fan_in)
        else:
            macs = layer.units * fan_in
            n.update(load=2 * macs, fadd=macs, fmul=macs if layer.mode == "float" else 0)
        n.update(fmul=out * 2, fadd=out, store=out)
    elif isinstance(layer, Pool):
        n.update(load=out * prod(layer.kernel), compare=out * prod(layer.kernel), store=out)
    elif isinstance(layer, BatchNorm):
        n.update(load=out, fmul=out, fadd=out, store=out)
    else:
        n.update(load=out * len(lp.inputs), fadd=out, store=out)
    n["add"] += n.pop("add_pack", 0)
    return +n


def paper_ops(lp) -> dict | None:
    """The paper's model for conv layers: c, N_W, N_I and clocks binary vs float."""
    layer = lp.layer
    if not isinstance(layer, Conv2d):
        return None
    c = lp.in_shapes[0][0]
    n_w, n_i = prod(layer.kernel), lp.out_shape[1] * lp.out_shape[2]
    return {"c": c, "N_W": n_w, "N_I": n_i, "binary": layer.mode == "xnor",
            "float_clocks": layer_clocks(c, n_w, n_i, layer.filters, binary=False),
            "clocks": layer_clocks(c, n_w, n_i, layer.filters, binary=layer.mode == "xnor")}


def predict(plan) -> None:
    """Fill LayerPlan.predicted with op counts and cycles from the target's cost table."""
    costs = plan.target.costs
    for lp in plan.layers:
        counts = layer_counts(lp, plan.target)
        cycles = sum(v * costs.get(k, 1.0) for k, v in counts.items())
        lp.predicted = {"ops": dict(counts), "cycles": round(cycles),
                        "microseconds": round(cycles / (plan.target.clock_ghz * 1e3), 3),
                        "paper_model": paper_ops(lp)}
