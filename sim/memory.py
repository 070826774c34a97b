"""The memory report: weight bytes per layer as float64, float32 and packed binary + α; the arena.
Also the one memory-hierarchy fact the cycle model uses: which buffers stream from beyond L2.

Figure 4(a) of the paper compares double precision against binary weights for
every layer. `all_binary` is that figure's binary column (every conv/dense
weight one bit, plus one float32 α per filter); `packed` is what xnorgen
actually emits for the layer modes in the description (float layers stay float32).
"""
from __future__ import annotations

from math import prod

from xnorgen.kinds import geometry, weight_bytes
from xnorgen.packing import words_for
from xnorgen.plan.core import sum_of_buffers


def layer_params(lp, target) -> tuple[int, int]:
    """(weights, other parameters) of a layer: counts of real numbers (conv/dense weights; bias,
    batchnorm statistics)."""
    g, wb = geometry(lp), weight_bytes(lp, target)
    weights = g.weights if g else 0
    return weights, (wb["float32"] // 4 - weights) if wb else 0


def layer_memory(lp, target) -> dict | None:
    """Bytes of one layer's parameters in each representation, or None for a layer without any."""
    weights, other = layer_params(lp, target)
    if weights == 0 and other == 0:
        return None
    wb = weight_bytes(lp, target)
    n_out = lp.out_shape[0]
    all_binary = other * 4 if weights == 0 else \
        n_out * words_for(weights // n_out, 8) + 4 * n_out + 4 * other
    return {"layer": lp.layer.name, "type": lp.layer.type, "mode": getattr(lp.layer, "mode", None),
            "params": weights + other, "float64": 8 * (weights + other), "float32": 4 * (weights + other),
            "packed": wb["packed"], "all_binary": all_binary}


def memory_report(plan) -> dict:
    """Per-layer weight memory, totals and ratios, and the activation arena of the plan."""
    layers = [m for m in (layer_memory(lp, plan.target) for lp in plan.layers) if m is not None]
    total = {k: sum(m[k] for m in layers) for k in ("params", "float64", "float32", "packed", "all_binary")}
    total["ratio_float64_packed"] = total["float64"] / total["packed"] if total["packed"] else None
    total["ratio_float32_packed"] = total["float32"] / total["packed"] if total["packed"] else None
    total["ratio_float64_all_binary"] = total["float64"] / total["all_binary"] if total["all_binary"] else None
    return {"report": "memory", "network": plan.net.name, "target": plan.target.name, "layers": layers,
            "total": total, "arena": {"bytes": plan.arena_size, "without_reuse": sum_of_buffers(plan)}}


def streamed_lines(nbytes, target) -> int:
    """64-byte lines a kernel streams from beyond L2 each inference: every buffer it reads or
    writes (weights, a float input or output) that is larger than the target's L2
    (cache.l2_bytes) cannot still be there from the last inference, nor from the layer before
    it. Smaller buffers are taken to be cache resident (the model has no finer hierarchy)."""
    l2 = target.cache.get("l2_bytes", 0)
    return sum(-(-n // 64) for n in nbytes if l2 and n > l2)


def layer_buffers(lp, target) -> list[int]:
    """Bytes of the buffers one layer's kernel touches: its packed weights, its float inputs
    (an xnor conv reads its stage's packed words instead) and its float output (none when a
    fused binarize epilogue writes the next stage instead); a bit pool's packed words."""
    wb = weight_bytes(lp, target)
    out = [wb["packed"]] if wb else []
    if lp.bit_pool:                     # packed signs in and out (wb: the words of one pixel)
        return out + [wb["packed"] * prod(s[1:]) for s in (lp.in_shapes[0], lp.out_shape)]
    if lp.binarize_in is None:
        out += [4 * prod(s) for s in lp.in_shapes]
    if not lp.binarize_out:
        out.append(4 * prod(lp.out_shape))
    return out
