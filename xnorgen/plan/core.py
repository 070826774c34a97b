"""Stage 3, plan: the passes that fill the plan IR (xnorgen.plan.ir), run by plan_network.

Needs: a Network with shapes (frontend.graph.build_graph) and a Target.
Guarantees (after plan_network): each LayerPlan has its kind, its C identifier, the storage
of its inputs and output, its scratch buffers and its kind's packing and tiling records;
every arena Buffer has a 64-byte-aligned offset such that buffers live at the same step
never overlap; Plan.arena_size is the first-fit peak. Each pass is a small function
Plan -> Plan; check.check_plan verifies the IR after each one.
"""
from __future__ import annotations

from functools import partial
from math import prod

from xnorgen import limits
from xnorgen.errors import XnorgenError
from xnorgen.frontend.graph import Network
from xnorgen.kinds import kind, kind_name
from xnorgen.naming import unique_c_idents
from xnorgen.packing import words_for
from xnorgen.plan.check import check_plan
from xnorgen.plan.fusion import plan_binarize, plan_epilogues, stage_reads
from xnorgen.plan.parallel import plan_parallel
from xnorgen.plan.ir import (ALIGN, ELIDED, INPUT, OUTPUT, Buffer, LayerPlan, Plan,  # noqa: F401 (re-exported)
                             align_up, is_alias)
from xnorgen.target import Target


def new_plan(net: Network, target: Target) -> Plan:
    """One LayerPlan per layer, in order, with its C identifier and shapes."""
    idents = unique_c_idents([layer.name for layer in net.layers])
    layers = [LayerPlan(layer, i, idents[layer.name], [net.shapes[s] for s in layer.inputs], net.shapes[layer.name])
              for i, layer in enumerate(net.layers)]
    return Plan(net, target, layers)


def assign_kinds(plan: Plan) -> Plan:
    """Each layer's kernel kind (xnorgen.kinds): the one dispatch every later stage follows."""
    for lp in plan.layers:
        lp.kind = kind_name(lp.layer)
    return plan


def assign_storage(plan: Plan) -> Plan:
    """Map every tensor to the caller's input/output pointer or to an arena buffer (flatten aliases)."""
    net = plan.net
    plan.storage["input"] = INPUT
    writer = {lp.epilogue[-1]: lp for lp in plan.layers if lp.epilogue}   # tensors a conv epilogue writes
    for lp in plan.layers:
        name = lp.layer.name
        if name == net.output:
            plan.storage[name] = OUTPUT
        elif name in plan.elided:
            plan.storage[name] = ELIDED
        elif is_alias(lp.layer, net):
            plan.storage[name] = plan.storage[lp.layer.inputs[0]]
        else:
            step = writer[name].step if name in writer else lp.step
            plan.storage[name] = name
            plan.buffers[name] = Buffer(name, 4 * prod(lp.out_shape), step, step)
        lp.inputs = [plan.storage[s] for s in lp.layer.inputs]
        lp.output = plan.storage[name]
    for name, lp in writer.items():     # the conv writes the last tensor of its epilogue
        lp.output = plan.storage[name]
    reads = [(key, lp.step) for lp in plan.layers for key in lp.inputs]
    reads += [(plan.storage[t], step) for t, step in stage_reads(plan)]
    for key, step in reads:             # a buffer lives until its last reader (through aliases)
        if key in plan.buffers:
            plan.buffers[key].last = max(plan.buffers[key].last, step)
    return plan


def plan_stages(plan: Plan) -> Plan:
    """Binarize stages: HWC-packed words (channels along the bits) and A, live from the step
    that writes them to their last reader; a stage with a bit pool also gets the producer's
    unpooled words (prepool), live from the producer to the pool."""
    wb, wbytes = plan.target.word_bits, plan.target.word_bytes
    steps = {lp.layer.name: lp.step for lp in plan.layers}
    for st in plan.binarize.values():
        st.words_per_pixel = words_for(st.channels, wb)
        first, last = steps[st.runs_in], max(steps[r] for r in st.readers)
        if st.pool:                     # the producer packs unpooled signs; the pool writes the stage
            st.prepool = f"{st.name}#prepool"
            hw = prod(plan.net.shapes[st.source][1:])
            plan.buffers[st.prepool] = Buffer(st.prepool, hw * st.words_per_pixel * wbytes, first, steps[st.pool])
            first = steps[st.pool]
        st.packed = f"{st.name}#packed"
        plan.buffers[st.packed] = Buffer(st.packed, st.hw * st.words_per_pixel * wbytes, first, last)
        if st.needs_amap:
            st.amap = f"{st.name}#amap"
            plan.buffers[st.amap] = Buffer(st.amap, 4 * st.hw, first, last)
    return plan


def plan_kernels(plan: Plan) -> Plan:
    """Each kind's own decisions: packing, tiling and scratch buffers (kinds/<kind>.py `plan`)."""
    for lp in plan.layers:
        kind(lp).plan(plan, lp)
    return plan


def plan_arena(plan: Plan) -> Plan:
    """Place buffers largest-first at the lowest 64-aligned offset free during their lifetime."""
    placed: list[Buffer] = []
    for b in sorted(plan.buffers.values(), key=lambda b: (-b.nbytes, b.first, b.name)):
        live = sorted((p for p in placed if p.first <= b.last and b.first <= p.last), key=lambda p: p.offset)
        off = 0
        for p in live:
            if off + b.nbytes <= p.offset:
                break
            off = max(off, align_up(p.offset + p.nbytes))
        b.offset = off
        placed.append(b)
    plan.arena_size = max((b.offset + b.nbytes for b in placed), default=0)   # the peak, not rounded up
    return plan


def name_buffers(plan: Plan) -> Plan:
    """A unique C identifier per buffer, so the generated C names every arena offset."""
    idents = unique_c_idents(sorted(plan.buffers))
    for name, b in plan.buffers.items():
        b.ident = idents[name]
    return plan


def check_arena_limit(plan: Plan) -> Plan:
    """The generated C addresses the arena with int offsets: refuse a bigger one."""
    if plan.arena_size > limits.MAX_ARENA_BYTES:
        raise XnorgenError(str(plan.net.path or plan.net.name), f"the arena needs {plan.arena_size} bytes, "
                           f"more than the generated C can address ({limits.MAX_ARENA_BYTES})")
    return plan


def planning_passes(fuse: bool = True) -> list:
    """The passes in order, as (name, function). fuse=False keeps every batchnorm and float
    tensor (each binarize stage runs standalone)."""
    return [("assign_kinds", assign_kinds), ("plan_binarize", partial(plan_binarize, fuse=fuse)),
            ("plan_epilogues", partial(plan_epilogues, fuse=fuse)), ("assign_storage", assign_storage),
            ("plan_stages", plan_stages), ("plan_kernels", plan_kernels), ("plan_parallel", plan_parallel),
            ("plan_arena", plan_arena),
            ("name_buffers", name_buffers), ("check_arena_limit", check_arena_limit)]


def plan_network(net: Network, target: Target, predict=None, fuse: bool = True) -> Plan:
    """Run every planning pass, checking the IR after each; `predict(plan)` (the simulator's
    cost model, passed by callers outside the compiler) fills LayerPlan.predicted."""
    plan = new_plan(net, target)
    for name, apply in planning_passes(fuse):
        plan = apply(plan)
        plan.passes.append(name)
        check_plan(plan, after=name)
    if predict is not None:
        predict(plan)
    return plan


def sum_of_buffers(plan: Plan) -> int:
    """What the arena would be without reuse: every buffer at its own aligned offset."""
    return sum(align_up(b.nbytes) for b in plan.buffers.values())
