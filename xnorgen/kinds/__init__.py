"""Kernel kinds: the unit of xnorgen. Each layer the plan gives a kernel is of one kind.

One module per kind owns everything about it: its typed plan record and the planning step
that fills it (`plan`), its weight layout (`consts`, `weight_bytes`), what its template
templates/kernel_<kind>.c.j2 needs (`context`). The simulator's model of the kind is
sim/<kind>.py under the same name (sim.machine.MODELS). Nothing outside this package
dispatches on layer classes for planning or code generation: it asks `kind(lp)`.

Adding a kind: a module here defining KIND (a base.Kind), its template, its simulator
model and tests; then list the module in _MODULES below.
"""
from __future__ import annotations

from xnorgen.kinds import batchnorm, conv_real, conv_xnor, dense, elementwise, pool
from xnorgen.kinds.base import Kind

_MODULES = (conv_xnor, conv_real, dense, batchnorm, pool, elementwise)
KINDS: dict[str, Kind] = {m.KIND.name: m.KIND for m in _MODULES}


def kind_name(layer) -> str:
    """The name of the kind a layer's kernel is of (exactly one matches)."""
    names = [k.name for k in KINDS.values() if k.matches(layer)]
    assert len(names) == 1, f"layer type {layer.type!r} matches kinds {names}: fix the kinds' `matches`"
    return names[0]


def kind(lp) -> Kind:
    """The Kind of a planned layer."""
    assert lp.kind, "run assign_kinds first"
    return KINDS[lp.kind]


def layer_consts(lp, target, plan=None) -> list:
    """The constant arrays lp's kernel reads (lowering.Const), in declaration order. plan: for
    kinds whose constants depend on a neighbour (conv_xnor's sign thresholds on its stage's
    batchnorm); required where such a layer is planned so."""
    return kind(lp).consts(lp, target, plan)


def weight_bytes(lp, target) -> dict | None:
    """Bytes of lp's weights as float32 and as stored; None for a layer without weights.
    Computed from shapes alone; a test holds it equal to the bytes layer_consts emits."""
    return kind(lp).weight_bytes(lp, target)


def geometry(lp):
    """lp's multiply-accumulate shape (base.Geometry), or None for a layer without any."""
    return kind(lp).geometry(lp)
