"""The target model: execute a Plan layer by layer, functionally and/or counting operations.

run_plan(plan, x=None) walks plan.layers in order, as the generated <net>_infer
does: a layer's standalone binarize stages (LayerPlan.stages_before) run just before
it, a batchnorm folded into a stage has no kernel (and costs nothing), a float/bwn conv
applies its folded batchnorm (+ relu) in its epilogue (their arithmetic counted there), an xnor conv
reads its stage's packed words and A and, with binarize_out, writes the next stage in
its epilogue instead of floats (elided tensors are never stored or loaded). Each kernel
goes to the model of its kind (sim/<kind>.py, named as xnorgen/kinds/<kind>.py; binarize.py
for stages), which follows the layer's packing and tiling. With an input x (and weights on
the network) every tensor is computed in float32 / packed words exactly as the
C computes it; without x only operation counts are made, which is fast for any
network size. Cycles are the target's model of the counts (sim/ops.cycles): the busiest
resource of its ports, or sum(count * cost) over its cost table.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from xnorgen.kinds.elementwise import OPS as ELEMENTWISE_OPS
from xnorgen.naming import stage_name
from xnorgen.plan.core import Plan, is_alias

from .batchnorm import batchnorm
from .binarize import binarize_stage
from .conv_real import real_conv
from .conv_xnor import xnor_conv
from .dense import dense
from .elementwise import elementwise
from .pool import bit_pool, pool
from .memory import layer_buffers, streamed_lines
from .ops import cycles, instructions, lower_libm, lower_popcount


@dataclass
class LayerResult:
    name: str
    ident: str
    type: str
    mode: str | None
    counts: Counter
    cycles: float
    instructions: int
    bound: str | None = None          # the busiest resource under the port model


@dataclass
class Run:
    plan: Plan
    layers: list[LayerResult] = field(default_factory=list)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    stages: dict[str, tuple] = field(default_factory=dict)       # stage name -> (packed words, A)

    @property
    def output(self):
        return self.tensors.get(self.plan.net.output)

    @property
    def total_counts(self) -> Counter:
        return sum((r.counts for r in self.layers), Counter())

    @property
    def total_cycles(self) -> float:
        return sum(r.cycles for r in self.layers)


def layer_consts(lp, target, plan=None) -> dict:
    """The constant arrays the C kernel reads (lowering), typed as the C types them."""
    from xnorgen.codegen.lowering import const_c_type
    from xnorgen.kinds import layer_consts as lower
    return {c.suffix: c.values.astype(const_c_type(c.kind, target).dtype) for c in lower(lp, target, plan)}


def _by_name(plan):
    return {lp.layer.name: lp for lp in plan.layers}


def stage_ident(st, plan) -> str:
    """The C function suffix of a standalone stage: <net>_binarize_<ident of its tensor>."""
    lp = _by_name(plan).get(st.tensor)
    return stage_name(lp.ident if lp else "input")


def _bn_consts(plan, st, run):
    if not run or st.bn is None:
        return None
    bn = _by_name(plan)[st.bn]
    return layer_consts(bn, plan.target, plan)


def _xnor_conv(lp, plan: Plan, result, run: bool):
    """Kind conv_xnor reads its stage's packed words (and A) and may write the next stage."""
    consts = layer_consts(lp, plan.target, plan) if run and lp.layer.params else {}
    out_st = None
    if lp.binarize_out:
        st = plan.binarize[lp.binarize_out]
        out_st = (st, _bn_consts(plan, st, run))
    out, counts = xnor_conv(lp, plan.target, consts, result.stages.get(lp.binarize_in), out_st, run)
    if lp.binarize_out:
        st = plan.binarize[lp.binarize_out]
        result.stages[st.prepool or st.name] = out          # unpooled signs when a bit pool follows
        out = None
    return out, counts


def _pool(lp, plan: Plan, result, run: bool):
    """Kind pool: on floats, or (bit_pool) on the unpooled packed signs of its stage."""
    if not lp.bit_pool:
        ins = [result.tensors[s] for s in lp.layer.inputs] if run else None
        return simulate_layer(lp, plan, ins, run)
    st = plan.binarize[lp.bit_pool]
    neg = layer_consts(lp, plan.target, plan)["neg"] if run else None
    words, counts = bit_pool(lp, plan.target, neg, result.stages[st.prepool][0] if run else None, run)
    result.stages[st.name] = (words, None)
    return None, counts


#: The simulator's model of each kernel kind (xnorgen.kinds), by the kind's name. Float-input
#: kinds take (lp, target, consts, input tensors, run) and return (output or None, Counter).
FLOAT_MODELS = {
    "conv_real": lambda lp, t, consts, ins, run: real_conv(lp, t, consts, ins and ins[0], run),
    "dense": lambda lp, t, consts, ins, run: dense(lp, t, consts, ins and ins[0], run),
    "batchnorm": lambda lp, t, consts, ins, run: batchnorm(lp, t, consts, ins and ins[0], run),
    "pool": lambda lp, t, consts, ins, run: pool(lp, t, consts, ins and ins[0], run),
    "elementwise": lambda lp, t, consts, ins, run: elementwise(lp, t, consts, ins, run,
                                                                  ELEMENTWISE_OPS[lp.layer.type]),
}
#: Kinds whose model may read packed stages rather than float tensors: (lp, plan, Run, run).
STAGE_MODELS = {"conv_xnor": _xnor_conv, "pool": _pool}


def simulate_layer(lp, plan: Plan, ins, run: bool):
    """(output or None, Counter) of one float-input layer; a flatten view costs nothing and copies nothing."""
    if is_alias(lp.layer, plan.net):
        return (ins[0].reshape(lp.out_shape) if run else None), Counter()
    consts = layer_consts(lp, plan.target, plan) if run and lp.layer.params else {}
    return FLOAT_MODELS[lp.kind](lp, plan.target, consts, ins if run else None, run)


def run_plan(plan: Plan, x=None) -> Run:
    """Simulate every layer; with x (one sample; the network must carry weights) also compute outputs."""
    run = x is not None
    result = Run(plan)
    t = plan.target
    if run:
        result.tensors["input"] = np.asarray(x, dtype=np.float32).reshape(plan.net.input_shape)

    def record(name, ident, typ, mode, counts):
        counts = lower_libm(lower_popcount(+counts, t), t)
        cyc, busiest = cycles(counts, t)
        result.layers.append(LayerResult(name, ident, typ, mode, counts, cyc, instructions(counts),
                                         busiest if counts else None))

    for lp in plan.layers:
        layer = lp.layer
        for sname in lp.stages_before:
            st = plan.binarize[sname]
            src = result.tensors[st.source] if run else None
            out, counts = binarize_stage(st, t, src, _bn_consts(plan, st, run), run)
            counts += Counter(stream=streamed_lines([4 * st.channels * st.hw], t))
            result.stages[sname] = out
            record(sname, stage_ident(st, plan), "binarize", None, counts)
        if lp.folded_into:                       # folded into a stage or a conv epilogue: no kernel
            record(layer.name, lp.ident, layer.type, None, Counter())
            continue
        if lp.kind in STAGE_MODELS:
            out, counts = STAGE_MODELS[lp.kind](lp, plan, result, run)
        else:
            ins = [result.tensors[s] for s in layer.inputs] if run else None
            out, counts = simulate_layer(lp, plan, ins, run)
        if run and out is not None:
            result.tensors[layer.name] = np.asarray(out, dtype=np.float32).reshape(lp.out_shape)
        if lp.epilogue:
            counts += _epilogue(plan, lp, result, run)
        counts += Counter(stream=streamed_lines(layer_buffers(lp, t), t))
        record(layer.name, lp.ident, layer.type, getattr(layer, "mode", None), counts)
    return result


def _epilogue(plan: Plan, lp, result: Run, run: bool) -> Counter:
    """A float/bwn conv's folded batchnorm (+ relu): the same float32 values as their own kernels,
    computed per output in the conv's epilogue, so only their arithmetic is counted (the
    intermediate tensors are never stored or reloaded)."""
    by_name, counts = _by_name(plan), Counter()
    for name in lp.epilogue:
        f = by_name[name]
        ins = [result.tensors[s] for s in f.layer.inputs] if run else None
        out, c = simulate_layer(f, plan, ins, run)
        counts += c - Counter({"load": c.get("load", 0), "store": c.get("store", 0)})
        if run:
            result.tensors[name] = np.asarray(out, dtype=np.float32).reshape(f.out_shape)
    return counts
