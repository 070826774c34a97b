"""manifest.json's "predicted": the target model's counts (counts only, no functional run).

compiler.py calls predict(plan); it fills every LayerPlan.predicted with the
operation counts by class, predicted instructions and cycles from the target's
cost table, latency at the target's clock, and the paper's model for the layer.
"""
from __future__ import annotations

from .machine import run_plan
from .paper import layer_model


def predict(plan) -> None:
    """Fill LayerPlan.predicted for every layer of the plan."""
    run = run_plan(plan)
    for lp, r in zip(plan.layers, run.layers):
        lp.predicted = {"ops": dict(r.counts), "instructions": r.instructions, "cycles": round(r.cycles),
                        "microseconds": round(r.cycles / (plan.target.clock_ghz * 1e3), 3),
                        "paper_model": layer_model(lp)}
