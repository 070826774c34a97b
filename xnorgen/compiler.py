"""The compile pipeline: Network -> Plan (xnorgen.plan.plan_network's named passes, the IR
checked after each) -> {file name: text} (xnorgen.codegen).

The compiler never imports the simulator: callers that want predicted cycles in manifest.json
(xnorgen.api, the CLI) pass the cost model in `annotate`, run after the last planning pass.
"""
from __future__ import annotations

from typing import Callable, Iterable

from xnorgen.codegen import render
from xnorgen.frontend.graph import Network
from xnorgen.plan.core import Plan, plan_network
from xnorgen.target import Target, resolve


def compile_network(net: Network, target: str | Target = "host", fuse: bool = True,
                    annotate: Iterable[Callable[[Plan], None]] = ()) -> tuple[Plan, dict[str, str]]:
    """Plan and render a network with weights; returns the plan and {file name: text}.
    fuse=False disables the batchnorm/binarize fusions (same numbers, more memory traffic);
    each `annotate(plan)` may add notes to the plan (predicted cycles) before it is rendered."""
    t = resolve(target) if isinstance(target, str) else target
    plan = plan_network(net, t, fuse=fuse)
    for note in annotate:
        note(plan)
    return plan, render.render(plan)
