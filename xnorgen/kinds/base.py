"""The Kind record every kernel kind module defines (see xnorgen.kinds), and its defaults."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


def no_consts(lp, target, plan=None) -> list:
    """A kernel that reads no constant arrays."""
    return []


def no_weights(lp, target) -> None:
    """A layer without weights."""
    return None


@dataclass(frozen=True)
class Geometry:
    """The multiply-accumulate shape of a conv or dense layer: `filters` outputs per pixel, each
    summing channels x taps products, at `pixels` output positions (dense: taps = pixels = 1)."""
    filters: int
    channels: int
    taps: int
    pixels: int

    @property
    def weights(self) -> int:
        return self.filters * self.channels * self.taps


def no_geometry(lp) -> None:
    """A layer without multiply-accumulates."""
    return None


def no_split(plan, lp) -> None:
    """A kernel the parallel entry point runs on one thread."""
    return None


def no_plan(plan, lp) -> None:
    """A kernel with no packing or tiling decisions."""
    return None


@dataclass(frozen=True)
class Kind:
    """One kernel kind. `matches(layer)` says which layers are of it; the functions take a
    LayerPlan and the Plan or the Target, and are documented in each kind's module."""
    name: str
    matches: Callable                    # (layer) -> bool
    context: Callable                    # (lp, plan) -> (template variables, [C arguments])
    plan: Callable = no_plan             # (plan, lp) -> None: fills lp.packing / lp.tiling / lp.scratch
    consts: Callable = no_consts         # (lp, target, plan) -> [lowering.Const]: the arrays its kernel reads
    weight_bytes: Callable = no_weights  # (lp, target) -> {"float32": n, "packed": n} or None
    geometry: Callable = no_geometry     # (lp) -> Geometry or None (the paper's model, memory reports)
    split: Callable = no_split           # (plan, lp) -> ir.Split or None: how threads divide it (hosted)

    @property
    def template(self) -> str:
        """templates/ file of its kernel: the kind's name, so a reader finds all its parts."""
        return f"kernel_{self.name}.c.j2"
