"""Plan pass: binarization stages, and the fusions that keep activations bit-packed.

Every float tensor T read by xnor convolutions gets one Binarize stage that writes sign(T)
as HWC-packed words (and A = mean_c |T| if a reader needs K), shared by all those readers.
Where it runs:
- If T is a batchnorm's output read only by xnor convolutions, the batchnorm is folded
  into the stage (y = (x - mean) * scale + beta per channel, as the batchnorm kernel computes it),
  so T never exists in memory.
- If, further, the batchnorm's input comes from an xnor convolution read only by that
  batchnorm, the stage runs in that convolution's epilogue: its float output never exists
  either, and activations stay packed from one binary layer to the next.
- The same holds through a max pool between the convolution and the batchnorm (the paper's
  block order, conv -> pool -> batchnorm -> sign), when no reader needs A and the convolution's
  bits are integer compares of its counts (sign thresholds, kinds/conv_xnor.py): the epilogue packs
  the signs of the batchnorm of every unpooled output, and the pool runs on those bits
  (Binarize.pool; kinds/pool.py): the batchnorm is monotone per channel, so the sign of
  the batchnorm of a max is the OR of the signs where its scale is >= 0 and the AND where it
  is < 0 (as bits, 1 = negative: the AND and the OR of the bits respectively).
- Otherwise the stage runs just before its first reader.
Fusion changes no number: the same float32 operations in the same order (tests hold the
fused library bit-identical to the unfused one).

Needs: LayerPlans with steps (plan_network). Guarantees: Plan.binarize holds every stage;
Plan.elided the tensors that are never materialized; LayerPlan.binarize_in/_out,
stages_before and folded_into say which layer runs what.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod



@dataclass
class Binarize:
    name: str
    tensor: str                 # the float tensor whose signs the readers see
    source: str                 # the tensor actually read (a folded batchnorm's input, else tensor)
    bn: str | None              # batchnorm folded into the stage
    readers: list[str]
    needs_amap: bool
    runs_in: str                # layer whose step runs the stage
    in_epilogue: bool           # True: runs_in is the producer and packs in its output stage
    channels: int
    hw: int
    packed: str = ""            # buffer names, set by plan_packing
    amap: str | None = None
    words_per_pixel: int = 0
    split: object | None = None     # ir.Split of a standalone stage (plan_parallel), or None
    pool: str | None = None         # a max pool between the producer and the batchnorm, run on bits
    prepool: str | None = None      # its input: the producer's packed signs (plan_stages)


def is_xnor_conv(lp) -> bool:
    """A kernel of kind conv_xnor (run assign_kinds first)."""
    assert lp.kind, "run assign_kinds first"
    return lp.kind == "conv_xnor"


def plan_binarize(plan, fuse: bool = True):
    """Create one stage per tensor read by xnor convolutions; fold batchnorms and producer epilogues if fuse."""
    net = plan.net
    by_name = {lp.layer.name: lp for lp in plan.layers}
    readers: dict[str, list] = {}
    for lp in plan.layers:
        for src in lp.layer.inputs:
            readers.setdefault(src, []).append(lp)
    for tensor, rs in readers.items():
        xconvs = [lp for lp in rs if is_xnor_conv(lp)]
        if not xconvs:
            continue
        shape = net.shapes[tensor]
        st = Binarize(f"bin_{tensor}", tensor, tensor, None, [lp.layer.name for lp in xconvs],
                      any(lp.layer.scale_input for lp in xconvs), xconvs[0].layer.name, False,
                      shape[0], prod(shape[1:]))
        bn = by_name.get(tensor)
        if fuse and bn is not None and bn.kind == "batchnorm" and len(xconvs) == len(rs):
            st.bn, st.source = tensor, bn.layer.inputs[0]
            plan.elided.add(tensor)
            bn.folded_into = st.name
            pool = bit_pool_candidate(plan, by_name, st.source, readers, st.needs_amap)
            if pool is not None:
                st.pool, st.source = pool.layer.name, pool.layer.inputs[0]
                plan.elided.add(pool.layer.name)
                pool.bit_pool = st.name
            prod_lp = by_name.get(st.source)
            if prod_lp is not None and is_xnor_conv(prod_lp) and len(readers[st.source]) == 1:
                st.runs_in, st.in_epilogue = prod_lp.layer.name, True
                plan.elided.add(st.source)
                prod_lp.binarize_out = st.name
        if not st.in_epilogue:
            by_name[st.runs_in].stages_before.append(st.name)
        for lp in xconvs:
            lp.binarize_in = st.name
        plan.binarize[st.name] = st
    return plan


def bit_pool_candidate(plan, by_name: dict, name: str, readers: dict, needs_amap: bool):
    """The LayerPlan of layer `name` (a batchnorm's input) if it is a non-global max pool that
    may run on the bits of a fused epilogue: its input an xnor conv read only by it, it read only
    by the batchnorm, no reader needing A, and the conv able to set its bits by thresholds.
    (Without thresholds the conv would binarize every unpooled output in float: measured 2-6 %
    more instructions on armv8 than pooling the floats, so the pool stays a float pool there.)"""
    from xnorgen.kinds.conv_xnor import count_decides     # (conv_xnor imports this module)
    pool_lp = by_name.get(name)
    if needs_amap or pool_lp is None or pool_lp.layer.type != "maxpool" or pool_lp.layer.global_:
        return None
    src = pool_lp.layer.inputs[0]
    prod_lp = by_name.get(src)
    if prod_lp is None or not is_xnor_conv(prod_lp) or len(readers.get(src, [])) != 1:
        return None
    if len(readers.get(name, [])) != 1 or plan.net.output in (src, name):
        return None
    return pool_lp if count_decides(plan.target, prod_lp) else None


def plan_epilogues(plan, fuse: bool = True):
    """Fold a batchnorm (and a relu, and, where the target asks for it (fold_pool), a max pool
    after it) into the epilogue of the float or bwn convolution before it, when each is the only
    reader of the one before: the convolution applies them to every output exactly as their own
    kernels would (same float32 operations, same order; the pool takes its taps in its own
    kernel's order from a ring of the last few output rows) and writes the last tensor directly,
    so the intermediate tensors are never stored. Batchnorms already folded into a binarize stage
    are left alone (run plan_binarize first). An xnor conv with a float output may likewise fold
    the residual add it feeds (_fold_residual_add)."""
    if not fuse:
        return plan
    readers: dict[str, list] = {}
    for lp in plan.layers:
        for src in lp.layer.inputs:
            readers.setdefault(src, []).append(lp)
    steps = {lp.layer.name: lp.step for lp in plan.layers}
    for lp in plan.layers:
        layer = lp.layer
        if is_xnor_conv(lp) and not lp.binarize_out and layer.name != plan.net.output:
            _fold_residual_add(plan, lp, readers.get(layer.name, []), steps)
            continue
        if lp.kind != "conv_real" or layer.name == plan.net.output:
            continue
        chain = _post_chain(plan, layer.name, readers, pool=plan.target.fold_pool)
        if not chain:
            continue
        lp.epilogue = [f.layer.name for f in chain]
        plan.elided.update([layer.name] + lp.epilogue[:-1])
        for f in chain:
            f.folded_into = layer.name
    return plan


def _post_chain(plan, name: str, readers: dict, pool: bool = True) -> list:
    """batchnorm, then optionally relu, then optionally (if pool) a non-global maxpool, each the
    only reader of the one before and none the network output but the last."""
    chain, cur = [], name
    for kind in ("batchnorm", "relu", "maxpool")[:3 if pool else 2]:
        rs = readers.get(cur, [])
        if cur == plan.net.output or len(rs) != 1 or rs[0].folded_into:
            break
        nxt = rs[0].layer
        if nxt.type != kind or (kind == "maxpool" and nxt.global_):
            if kind == "relu":
                continue                    # a pool may follow the batchnorm directly
            break
        chain.append(rs[0])
        cur = nxt.name
    return chain if chain and chain[0].layer.type == "batchnorm" else []


def _fold_residual_add(plan, lp, rs: list, steps: dict) -> None:
    """An xnor conv whose float output only feeds an add (a residual connection) adds the other
    operand in its epilogue and writes the sum directly, when that operand exists by then
    (float a + b == b + a, so the sum is the add kernel's exactly)."""
    if len(rs) != 1 or rs[0].layer.type != "add" or rs[0].folded_into:
        return
    add = rs[0]
    other = [t for t in add.layer.inputs if t != lp.layer.name]
    if len(other) != 1 or steps.get(other[0], -1) >= lp.step:
        return
    lp.epilogue = [add.layer.name]
    plan.elided.add(lp.layer.name)
    add.folded_into = lp.layer.name


def residual_of(plan, lp) -> str | None:
    """The tensor an xnor conv adds in its epilogue (a folded residual add), else None."""
    if not (is_xnor_conv(lp) and lp.epilogue):
        return None
    add = plan.net.layer(lp.epilogue[0])
    return next(t for t in add.inputs if t != lp.layer.name)


def stage_reads(plan) -> list[tuple[str, int]]:
    """(tensor, step) pairs: standalone stages read their source at their reader's step."""
    steps = {lp.layer.name: lp.step for lp in plan.layers}
    return [(st.source, steps[st.runs_in]) for st in plan.binarize.values() if not st.in_epilogue]
