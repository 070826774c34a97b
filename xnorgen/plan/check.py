"""check_plan: the IR invariants, verified after every planning pass (plan_network).

Each check applies once the pass that establishes it has run (Plan.passes), so a broken
guarantee is reported right after the pass that broke it, naming that pass.
"""
from __future__ import annotations

from xnorgen.naming import is_c_identifier
from xnorgen.plan.ir import ALIGN, ELIDED, INPUT, OUTPUT, Plan


def check_plan(plan: Plan, after: str) -> None:
    """Raise AssertionError naming the pass `after` if the plan breaks an invariant."""
    done = set(plan.passes)
    where = f"plan IR broken after pass {after}"
    assert [lp.step for lp in plan.layers] == list(range(len(plan.layers))), f"{where}: steps not 0..n-1"
    idents = [lp.ident for lp in plan.layers]
    assert len(set(idents)) == len(idents) and all(map(is_c_identifier, idents)), f"{where}: C identifiers"
    if "assign_kinds" in done:
        assert all(lp.kind for lp in plan.layers), f"{where}: a layer has no kind"
    if "assign_storage" in done:
        for lp in plan.layers:
            for key in lp.inputs + [lp.output]:
                assert key in (INPUT, OUTPUT, ELIDED) or key in plan.buffers, \
                    f"{where}: {lp.layer.name} uses storage {key!r} that is no buffer"
    if "plan_kernels" in done:
        for lp in plan.layers:
            for role, buf in lp.scratch.items():
                assert buf in plan.buffers, f"{where}: {lp.layer.name} scratch {role} has no buffer"
            if lp.binary_input:
                assert lp.packing is not None, f"{where}: xnor layer {lp.layer.name} has no packing"
    if "plan_arena" in done:
        _check_arena(plan, where)


def _check_arena(plan: Plan, where: str) -> None:
    """Every buffer placed, aligned, inside the arena, and apart from every buffer live with it."""
    bufs = sorted(plan.buffers.values(), key=lambda b: b.offset if b.offset is not None else -1)
    for b in bufs:
        assert b.offset is not None and b.offset % ALIGN == 0, f"{where}: buffer {b.name} unplaced or unaligned"
        assert b.offset + b.nbytes <= plan.arena_size, f"{where}: buffer {b.name} ends past the arena"
    for i, a in enumerate(bufs):
        for b in bufs[i + 1:]:
            if b.offset >= a.offset + a.nbytes:
                break
            live_together = a.first <= b.last and b.first <= a.last
            assert not live_together, f"{where}: buffers {a.name} and {b.name} overlap while both live"
