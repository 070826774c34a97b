"""Plan pass: how the parallel entry point of a hosted target divides each kernel.

<name>_infer_parallel (hosted targets: the target yaml's `hosted`) runs the same kernels as
<name>_infer, in the same order, but hands the big ones to the caller's parallel-for: each part
computes a contiguous range of the kernel's outputs (ir.Split, chosen by the kind), with the
same code and the same float operations per output, so the bits never depend on the thread
count. No part needs scratch of its own, so the arena is <NAME>_ARENA_SIZE for every count.

Needs: plan_kernels (tilings and scratch) and plan_stages; runs before plan_arena (a split may
grow a scratch buffer). Guarantees: LayerPlan.split and Binarize.split are set where a kernel
is split (hosted targets only), None elsewhere; every split has extent >= 2.
"""
from __future__ import annotations

from xnorgen.kinds import kind
from xnorgen.plan.ir import Plan, Split
from xnorgen.plan.tiling import BINARIZE_TILE

#: Least work (the kinds' estimate, roughly cycles) worth a parallel-for: one costs about a
#: microsecond when the workers are awake (templates/host/xg_pool.c), a few thousand cycles.
MIN_SPLIT_WORK = 20_000


def stage_split(st) -> Split:
    """A standalone binarize stage: whole tiles of BINARIZE_TILE pixels (the partial tile last,
    as one more unit), so each pixel takes the same path as in the serial kernel. Work: values / 4."""
    tiles = -(-st.hw // BINARIZE_TILE)
    return Split("pixel tiles", tiles, st.channels * st.hw // 4)


def worth_splitting(s: Split | None) -> Split | None:
    return s if s is not None and s.extent >= 2 and s.work >= MIN_SPLIT_WORK else None


def plan_parallel(plan: Plan) -> Plan:
    """Each kernel's Split on hosted targets (kinds' `split`), kept where it is worth a parallel-for."""
    if not plan.target.hosted:
        return plan
    for lp in plan.layers:
        if lp.folded_into is None:
            lp.split = worth_splitting(kind(lp).split(plan, lp))
    for st in plan.binarize.values():
        if not st.in_epilogue:
            st.split = worth_splitting(stage_split(st))
    return plan
