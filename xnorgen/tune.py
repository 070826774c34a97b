"""Autotuning: time a target's kernel-shape knobs on this machine for one network.

Needs: a network with weights and a target that runs here.
Guarantees: every candidate computes bit-identical outputs to the target's defaults (checked
on a random input; a difference is a bug and raises); the result is a Target with the chosen
knobs and a `tuned` record of what was measured, which a build carries into manifest.json.

The knobs are target data (targets/*.yaml): filter_block, float_block, bwn_expand, pixel_lanes,
store_tile, block_prefetch, stream_prefetch. The search is one pass of coordinate descent from the
target's values: each knob's candidates are built and called in interleaved rounds together
with the current best (so a machine whose speed drifts treats them alike), and a candidate
replaces the best only if its median per-round time ratio is below `keep` (0.97: a 3 % win).
A candidate that changes no layer's packing or tiling (the knob does not apply to this
network) is not built.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

from xnorgen.toolchain.loader import load_module
from xnorgen.api import compile_network
from xnorgen.toolchain.runtime import CompiledNetwork
from xnorgen.plan.manifest import TARGET_KNOBS as KNOBS
from xnorgen.target import Target
from xnorgen.plan.tiling import filter_block


@dataclass
class TuneResult:
    target: Target                          # the tuned target (name unchanged, `tuned` filled)
    knobs: dict                             # the chosen value of every knob
    trials: list = field(default_factory=list)   # (knob, value, median time ratio to the best so far,
                                                 #  True if no layer's plan changes: not timed)


def candidate_values(target: Target, knob: str) -> list[int]:
    """Values worth timing for one knob: its neighbours and "off" where the target enables it;
    knobs a target leaves off stay off (it has no fast path for them)."""
    if knob == "filter_block":
        fb = filter_block(target)
        return sorted({fb // 2, fb, fb * 2} - {0, 1, 2})
    value = getattr(target, knob)
    if knob == "batch_dense":        # tune times one sample, which never runs the batch variant
        return [value]
    if not value:
        return [0]
    if knob in ("float_block", "bwn_expand", "pixel_lanes", "store_tile"):
        return [0, value]
    if knob == "block_prefetch":
        return [0, 1, 2, 4]
    return [0, value // 2, value, value * 2]             # stream_prefetch, bytes ahead


def _interleaved_ratios(fns: list[Callable], reps: int) -> list[float]:
    """Median over rounds of (time of fns[i]) / (time of fns[0]), the fns called round-robin."""
    times = np.zeros((reps, len(fns)))
    for fn in fns:                          # warm-up: first-touch page faults, caches
        fn()
    for r in range(reps):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[r, i] = time.perf_counter() - t0
    return [float(np.median(times[:, i] / times[:, 0])) for i in range(len(fns))]


def tune(net, target: Target, reps: int = 30, keep: float = 0.97, progress: Callable[[str], None] = print) -> TuneResult:
    """Coordinate descent over KNOBS for net on target (see the module docstring)."""
    x = np.random.default_rng(0).standard_normal(net.input_shape).astype(np.float32)
    best = {k: (filter_block(target) if k == "filter_block" else getattr(target, k)) for k in KNOBS}

    def variant(knobs):
        return replace(target, **knobs)

    def decisions(knobs):
        """The plan's per-layer packing and tiling: equal decisions make equal kernels."""
        plan, files = compile_network(net, variant(knobs))
        return plan, files, [(lp.layer.name, lp.packing, lp.tiling) for lp in plan.layers]

    def runner(plan, files):
        lib = CompiledNetwork(plan, files, load_module(net.name, files, plan.target))
        out = np.empty(net.output_shape, np.float32)
        fn = lib.bind(x, out)
        fn()
        return fn, out

    plan, files, best_key = decisions(best)
    best_fn, reference_out = runner(plan, files)     # the defaults' output: every candidate must match it
    trials = []
    for knob in KNOBS:
        values = [v for v in candidate_values(target, knob) if v != best[knob]]
        seen, fns, tried = [best_key], [best_fn], []
        for v in values:
            plan, files, key = decisions({**best, knob: v})
            if key in seen:
                trials.append((knob, v, None, True))
                continue
            progress(f"tune {net.name}: building {knob}={v}")
            fn, out = runner(plan, files)
            if not np.array_equal(out, reference_out, equal_nan=True):
                raise AssertionError(f"tune: {knob}={v} changes {net.name}'s output; a kernel path is not exact")
            seen.append(key)
            fns.append(fn)
            tried.append((v, key))
        if not tried:
            continue
        progress(f"tune {net.name}: {knob} in {[best[knob]] + [v for v, _ in tried]} ...")
        ratios = _interleaved_ratios(fns, reps)
        trials += [(knob, v, r, False) for (v, _), r in zip(tried, ratios[1:])]
        i = int(np.argmin(ratios))
        if i > 0 and ratios[i] < keep:
            v, best_key = tried[i - 1]
            progress(f"tune {net.name}: {knob} {best[knob]} -> {v} ({ratios[i]:.3f} of the time)")
            best = {**best, knob: v}
            best_fn = fns[i]
    record = {"network": net.name, "knobs": dict(best), "reps": reps, "keep": keep,
              "trials": [{"knob": k, "value": v, "ratio": r, "no_change": s} for k, v, r, s in trials]}
    return TuneResult(replace(variant(best), tuned=record), best, trials)


def tuned_name(target: Target, net_name: str) -> str:
    return f"{target.name}-{net_name}"


def write_tuned_target(result: TuneResult, net_name: str, out_dir) -> Path:
    """Write the tuned target as <out_dir>/<target>-<net>.yaml, loadable through XNORGEN_TARGETS.
    Priority 0, so `host` never picks it for other networks; written whole or not at all."""
    t = replace(result.target, name=tuned_name(result.target, net_name), priority=0,
                description=f"{result.target.description}; knobs tuned for {net_name} by `xnorgen tune`")
    doc = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(t).items()}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{t.name}.yaml"
    fd, tmp = tempfile.mkstemp(prefix=f".{t.name}.", dir=out)
    with os.fdopen(fd, "w") as f:
        f.write(f"# Written by `xnorgen tune` for network {net_name}; use with XNORGEN_TARGETS={out}\n")
        yaml.safe_dump(doc, f, sort_keys=False)
    os.replace(tmp, path)
    return path
