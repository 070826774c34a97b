"""The target model: execute a Plan layer by layer, functionally and/or counting operations.

run_plan(plan, x=None) walks plan.layers in order, as the generated <net>_infer
does. Each layer goes to its kernel simulator (kernels_conv / kernels_misc),
which follows the layer's packing and tiling. With an input x (and weights on
the network) every tensor is computed in float32 / packed words exactly as the
C computes it; without x only operation counts are made, which is fast for any
network size. Cycles are sum(count * cost) over the target's cost table.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from xnorgen.description import BatchNorm, Conv2d, Dense, Pool
from xnorgen.plan import Plan, is_alias

from . import kernels_conv as kc
from . import kernels_misc as km
from .ops import cycles, instructions, lower_popcount


@dataclass
class LayerResult:
    name: str
    ident: str
    type: str
    mode: str | None
    counts: Counter
    cycles: float
    instructions: int


@dataclass
class Run:
    plan: Plan
    layers: list[LayerResult] = field(default_factory=list)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def output(self):
        return self.tensors.get(self.plan.net.output)

    @property
    def total_counts(self) -> Counter:
        return sum((r.counts for r in self.layers), Counter())

    @property
    def total_cycles(self) -> float:
        return sum(r.cycles for r in self.layers)


def layer_consts(lp, target) -> dict:
    """The constant arrays the C kernel reads (lowering), typed as the C types them."""
    from xnorgen.lowering import layer_consts as lower
    word = np.dtype(f"u{target.word_bytes}")
    return {c.suffix: (c.values.astype(word) if c.kind == "word" else c.values.astype(np.float32))
            for c in lower(lp, target)}


def simulate_layer(lp, plan: Plan, ins, run: bool):
    """(output or None, Counter) of one layer; a flatten view costs nothing and copies nothing."""
    layer, target = lp.layer, plan.target
    if is_alias(layer, plan.net):
        return (ins[0].reshape(lp.out_shape) if run else None), Counter()
    consts = layer_consts(lp, target) if run and layer.params else {}
    x = ins[0] if run else None
    if isinstance(layer, Conv2d):
        fn = kc.xnor_conv if layer.mode == "xnor" else kc.real_conv
        return fn(lp, target, consts, x, run)
    if isinstance(layer, Dense):
        return km.dense(lp, target, consts, x, run)
    if isinstance(layer, BatchNorm):
        return km.batchnorm(lp, target, consts, x, run)
    if isinstance(layer, Pool):
        return km.pool(lp, target, consts, x, run)
    op = {"flatten": "copy"}.get(layer.type, layer.type)
    return km.elementwise(lp, target, consts, ins, run, op)


def run_plan(plan: Plan, x=None) -> Run:
    """Simulate every layer; with x (one sample; the network must carry weights) also compute outputs."""
    run = x is not None
    result = Run(plan)
    if run:
        result.tensors["input"] = np.asarray(x, dtype=np.float32).reshape(plan.net.input_shape)
    for lp in plan.layers:
        ins = [result.tensors[s] for s in lp.layer.inputs] if run else None
        out, counts = simulate_layer(lp, plan, ins, run)
        counts = lower_popcount(+counts, plan.target)
        if run:
            result.tensors[lp.layer.name] = np.asarray(out, dtype=np.float32).reshape(lp.out_shape)
        result.layers.append(LayerResult(lp.layer.name, lp.ident, lp.layer.type, getattr(lp.layer, "mode", None),
                                         counts, cycles(counts, plan.target), instructions(counts)))
    return result
