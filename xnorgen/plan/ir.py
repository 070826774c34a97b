"""The plan IR: Plan, LayerPlan and Buffer, and the typed records the passes fill in.

Every decision the code generator and the simulator follow lives here (and in manifest.json,
its dump). Records are dataclasses, not dicts, so a misspelt decision is an AttributeError at
the pass that made it; `record_json` turns one into the manifest's plain data.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from math import prod

from xnorgen.frontend.description import Layer
from xnorgen.frontend.graph import Network
from xnorgen.target import Target

ALIGN = 64
INPUT, OUTPUT = "@input", "@output"     # storage that is the caller's pointer, not the arena
ELIDED = "@elided"                       # a tensor fused away (only its packed signs exist)


def align_up(n: int, a: int = ALIGN) -> int:
    return -(-n // a) * a


@dataclass
class Buffer:
    """A region of the arena, live from step `first` to step `last` inclusive."""
    name: str
    nbytes: int
    first: int
    last: int
    offset: int | None = None
    ident: str = ""              # C identifier (name_buffers): the generated C names its offset


@dataclass
class Packing:
    """How a binary layer's input bits are packed into words (packing.pack_signs' layout)."""
    layout: str                   # "HWC, channels packed" (conv) or "flat" (dense)
    word_bits: int
    packed_axis: str              # "channels" or "inputs"
    bits: int                     # bits per pixel (conv) or per sample (dense)
    words_per_pixel: int
    tail_bits: int                # bits % word_bits: the last word's used bits (0: all)
    weight_layout: str = ""       # the kernel's weight order, filled by the tiling pass
    pad_value: float | None = None        # conv: the value padded taps take (contract: 0 or +-1)
    binarize_stage: str | None = None     # conv: the stage whose words it reads


@dataclass
class Split:
    """How the parallel entry point of a hosted target divides one kernel (plan_parallel): its
    `extent` units along `axis` ("output rows", "unit blocks", "channels", "pixel tiles") go to
    the parts as contiguous ranges [lo, hi); every part writes only its range's outputs, so no
    part needs scratch of its own and the bits are those of one thread. `prologue`: a serial
    step runs first (conv_real's padded copy, dense's packed input). `work`: the estimated
    operations that made the split worth its synchronisation."""
    axis: str
    extent: int
    work: int
    prologue: bool = False


@dataclass
class LayerPlan:
    layer: Layer
    step: int
    ident: str                              # C identifier, unique in the network
    in_shapes: list[tuple[int, ...]]
    out_shape: tuple[int, ...]
    kind: str = ""                          # its kernel kind (xnorgen.kinds), set by assign_kinds
    inputs: list[str] = field(default_factory=list)     # storage key of each input
    output: str = ""                                     # storage key of the output
    scratch: dict[str, str] = field(default_factory=dict)  # role -> buffer name
    packing: Packing | None = None
    tiling: object | None = None            # the kind's tiling record (a dataclass), if it has one
    predicted: dict | None = None
    binarize_in: str | None = None      # xnor conv: the stage whose packed words it reads
    binarize_out: str | None = None     # producer: the stage its epilogue writes instead of floats
    bit_pool: str | None = None         # max pool run on the packed signs of this stage (fusion.Binarize.pool)
    stages_before: list[str] = field(default_factory=list)   # stages run just before this kernel
    folded_into: str | None = None      # folded into a stage or a conv epilogue: no kernel of its own
    epilogue: list[str] = field(default_factory=list)   # float/bwn conv: folded batchnorm (+ relu) it applies
    split: Split | None = None          # hosted targets: how the parallel entry point divides it (plan_parallel)

    @property
    def binary_input(self) -> bool:
        return getattr(self.layer, "mode", "float") == "xnor"


@dataclass
class Plan:
    net: Network
    target: Target
    layers: list[LayerPlan]
    storage: dict[str, str] = field(default_factory=dict)   # tensor name -> storage key
    buffers: dict[str, Buffer] = field(default_factory=dict)
    binarize: dict = field(default_factory=dict)            # stage name -> fusion.Binarize
    elided: set = field(default_factory=set)                # tensors never materialized
    arena_size: int | None = None
    passes: list[str] = field(default_factory=list)         # the passes run so far, in order

    @property
    def input_size(self) -> int:
        return prod(self.net.input_shape)

    @property
    def output_size(self) -> int:
        return prod(self.net.output_shape)

    def layer_plan(self, name: str) -> LayerPlan:
        """The LayerPlan of the layer called `name`."""
        return next(lp for lp in self.layers if lp.layer.name == name)

    def ident(self, name: str) -> str:
        """The C identifier of layer `name` ("input" for the network input)."""
        return "input" if name == "input" else self.layer_plan(name).ident


def record_json(record) -> dict | None:
    """A plan record as manifest data: its fields, minus optional ones left at None."""
    if record is None:
        return None
    return {k: v for k, v in dataclasses.asdict(record).items() if v is not None}


def is_alias(layer: Layer, net: Network) -> bool:
    """flatten is a view of its input (same bytes), except as the output, which must be copied out."""
    return layer.type == "flatten" and layer.name != net.output


def folded_pool(plan: Plan, lp: LayerPlan):
    """The max pool a float/bwn conv applies in its epilogue (fusion.plan_epilogues), else None."""
    if not lp.epilogue:
        return None
    last = plan.net.layer(lp.epilogue[-1])
    return last if last.type == "maxpool" else None


def add_scratch(plan: Plan, lp: LayerPlan, role: str, nbytes: int) -> None:
    """Give lp a scratch buffer of nbytes, live only at its own step."""
    name = f"{lp.layer.name}#{role}"
    plan.buffers[name] = Buffer(name, nbytes, lp.step, lp.step)
    lp.scratch[role] = name
