"""manifest.json's "predicted": the target model's counts (counts only, no functional run).

compiler.py calls predict(plan); it fills every LayerPlan.predicted with the
operation counts by class, predicted instructions and cycles from the target's
cost table, latency at the target's clock, and the paper's model for the layer.
"""
from __future__ import annotations

from collections import Counter

from .machine import run_plan
from .paper import layer_model


def predict(plan) -> None:
    """Fill LayerPlan.predicted for every layer of the plan. A layer's numbers include the
    standalone binarize stages that run just before it (listed under "stages"), so the
    layers sum to the whole inference; a batchnorm folded into a stage predicts zero."""
    run = run_plan(plan)
    rows = {r.name: r for r in run.layers}
    for lp in plan.layers:
        parts = [rows[s] for s in lp.stages_before] + [rows[lp.layer.name]]
        ops = sum((r.counts for r in parts), Counter())
        cyc = sum(r.cycles for r in parts)
        lp.predicted = {"ops": dict(ops), "instructions": sum(r.instructions for r in parts), "cycles": round(cyc),
                        "microseconds": round(cyc / (plan.target.clock_ghz * 1e3), 3),
                        "stages": list(lp.stages_before), "paper_model": layer_model(lp)}
