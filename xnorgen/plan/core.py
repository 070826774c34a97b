"""Stage 3, plan: every decision the code generator follows, in one IR.

Needs: a Network with shapes (graph.build_graph) and a Target.
Guarantees (after plan_network): each LayerPlan has its C identifier, the
storage of its inputs and output, its scratch buffers, bit-packing and tiling
decisions; every arena Buffer has a 64-byte-aligned offset such that buffers
live at the same step never overlap; Plan.arena_size is the first-fit peak.
Passes are small functions run in order by plan_network; manifest() dumps it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

from xnorgen import limits
from xnorgen.frontend.description import Conv2d, Dense, Layer
from xnorgen.errors import XnorgenError
from xnorgen.frontend.graph import Network
from xnorgen.naming import unique_c_idents
from xnorgen.packing import words_for
from xnorgen.target import Target
from xnorgen.plan.fusion import plan_binarize, plan_epilogues, stage_reads
from xnorgen.plan.tiling import (LANE_FILTERS, bwn_expand, column_groups, column_runs, filter_block, float_block_vectors,
                     float_filter_block, float_pixel_lanes, interior_columns, padded_input, pixel_block, pixel_lanes,
                     split_columns, store_tile, stream_prefetch, next_block_prefetch)

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


@dataclass
class LayerPlan:
    layer: Layer
    step: int
    ident: str                              # C identifier, unique in the network
    in_shapes: list[tuple[int, ...]]
    out_shape: tuple[int, ...]
    inputs: list[str] = field(default_factory=list)     # storage key of each input
    output: str = ""                                     # storage key of the output
    scratch: dict[str, str] = field(default_factory=dict)  # role -> buffer name
    packing: dict | None = None
    tiling: dict | None = None
    predicted: dict | None = None
    binarize_in: str | None = None      # xnor conv: the stage whose packed words it reads
    binarize_out: str | None = None     # producer: the stage its epilogue writes instead of floats
    stages_before: list[str] = field(default_factory=list)   # stages run just before this kernel
    folded_into: str | None = None      # folded into a stage or a conv epilogue: no kernel of its own
    epilogue: list[str] = field(default_factory=list)   # float/bwn conv: folded batchnorm (+ relu) it applies

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

    @property
    def input_size(self) -> int:
        return prod(self.net.input_shape)

    @property
    def output_size(self) -> int:
        return prod(self.net.output_shape)


def is_alias(layer: Layer, net: Network) -> bool:
    """flatten is a view of its input (same bytes), except as the output, which must be copied out."""
    return layer.type == "flatten" and layer.name != net.output


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


def plan_packing(plan: Plan) -> Plan:
    """Binarize stages: HWC-packed words (channels along the bits) and A, live from the step that
    writes them to their last reader. xnor convs: K scratch. xnor dense: its own flat packing."""
    wb, wbytes = plan.target.word_bits, plan.target.word_bytes
    steps = {lp.layer.name: lp.step for lp in plan.layers}
    for st in plan.binarize.values():
        st.words_per_pixel = words_for(st.channels, wb)
        first, last = steps[st.runs_in], max(steps[r] for r in st.readers)
        st.packed = f"{st.name}#packed"
        plan.buffers[st.packed] = Buffer(st.packed, st.hw * st.words_per_pixel * wbytes, first, last)
        if st.needs_amap:
            st.amap = f"{st.name}#amap"
            plan.buffers[st.amap] = Buffer(st.amap, 4 * st.hw, first, last)
    for lp in plan.layers:
        if not lp.binary_input:
            continue
        shape = lp.in_shapes[0]
        if isinstance(lp.layer, Conv2d):
            st = plan.binarize[lp.binarize_in]
            lp.packing = {"layout": "HWC, channels packed", "word_bits": wb, "packed_axis": "channels",
                          "bits": st.channels, "words_per_pixel": st.words_per_pixel,
                          "tail_bits": st.channels % wb, "pad_value": lp.layer.pad_value,
                          "binarize_stage": st.name}
            if lp.layer.scale_input:
                _scratch(plan, lp, "kmap", 4 * lp.out_shape[1] * lp.out_shape[2])
        else:
            n = prod(shape)
            lp.packing = {"layout": "flat", "word_bits": wb, "packed_axis": "inputs", "bits": n,
                          "words_per_pixel": words_for(n, wb), "tail_bits": n % wb}
            _scratch(plan, lp, "packed", words_for(n, wb) * wbytes)
    return plan


def _scratch(plan: Plan, lp: LayerPlan, role: str, nbytes: int):
    name = f"{lp.layer.name}#{role}"
    plan.buffers[name] = Buffer(name, nbytes, lp.step, lp.step)
    lp.scratch[role] = name


def plan_tiling(plan: Plan) -> Plan:
    """Binary layers: filters (units) in register blocks of filter_block, whose weights are
    interleaved [F/FB][...][FB] so one input word meets FB filter words in one vector; a conv
    sweeps every pixel with one block's weights (kh*kw*words*FB words, a few KiB) held in L1.
    Float and bwn layers: filters in blocks of float lanes (float_filter_block); a bwn conv with
    tiling bwn_expand gets a scratch block of +-1.0 weights.
    Where the target has pixel_lanes, convs whose geometry fits (tiling.pixel_lanes,
    tiling.float_pixel_lanes) put neighbouring outputs in the lanes instead; every decision,
    with the column ranges and groups the kernels loop over, goes into LayerPlan.tiling."""
    fb = filter_block(plan.target)
    assert plan.target.word_bits % fb == 0, "a filter block's bits must sit in one word (fused epilogues)"
    assert not plan.target.pixel_lanes or fb % LANE_FILTERS == 0, \
        f"pixel lanes take filters {LANE_FILTERS} at a time: make filter_block a multiple"
    for lp in plan.layers:
        layer = lp.layer
        if isinstance(layer, Conv2d) and layer.mode == "xnor":
            kh, kw = layer.kernel
            per_filter = kh * kw * lp.packing["words_per_pixel"] * plan.target.word_bytes
            blocks = -(-layer.filters // fb)
            wpp, (ox0, ox1) = lp.packing["words_per_pixel"], _interior(layer, lp)
            lanes = pixel_lanes(plan.target, layer, wpp, ox0, ox1)
            pixels = lp.out_shape[1] * lp.out_shape[2]
            lp.tiling = {"filter_block": fb, "filter_blocks": blocks, "weight_bytes_per_block": fb * per_filter,
                         "loop_order": "filter block > out row > out col > ky > (kx, word) > filter in block",
                         "interior_run_words": kw * wpp, "interior_columns": [ox0, ox1], "pixel_lanes": lanes,
                         "column_ranges": _column_ranges(layer, lp, ox0, ox1, lanes),
                         "store_tile": store_tile(plan.target, lanes, not lp.binarize_out
                                                  or plan.binarize[lp.binarize_out].needs_amap, pixels),
                         "next_block_prefetch": next_block_prefetch(plan.target, lanes, fb * per_filter, pixels)}
            if lanes:
                lp.tiling["loop_order"] = ("filter block > out row > {interior: groups of pixel_lanes columns > "
                                           f"filter in block, {LANE_FILTERS} at a time > ky > kx > pixel lane; "
                                           "border columns: ky > kx > filter in block}")
            lp.packing["weight_layout"] = "[F/FB][KH][KW][words][FB], filters past F zero"
        elif isinstance(layer, Dense) and layer.mode == "xnor":
            blocks, words = -(-layer.units // fb), lp.packing["words_per_pixel"]
            lp.tiling = {"filter_block": fb, "filter_blocks": blocks,
                         "loop_order": "unit block > word > unit in block",
                         "prefetch_bytes": stream_prefetch(plan.target, blocks * fb * words * plan.target.word_bytes)}
            lp.packing["weight_layout"] = "[U/FB][words][FB], units past U zero"
        elif isinstance(layer, (Conv2d, Dense)):      # float and bwn: blocks of float lanes
            ffb, conv = float_filter_block(plan.target), isinstance(layer, Conv2d)
            expand = conv and bwn_expand(plan.target, layer, lp.out_shape)   # a block's masks as +-1.0
            fan_in = "[C][KH][KW]" if conv else "[N]"
            lp.tiling = {"filter_block": ffb, "filter_blocks": -(-(layer.filters if conv else layer.units) // ffb),
                         **(_pixel_groups(layer, lp, plan.target, expand) if conv else {}),
                         "loop_order": "filter block > out row > out col > channel > ky > kx > filter in block"
                         if conv else "unit block > input > unit in block",
                         "weight_layout": f"[F/FB]{fan_in}[FB] floats" if layer.mode == "float"
                         else f"[F/FB]{fan_in} masks of FB sign bits"}
            if lp.tiling.get("pixel_lanes"):
                lp.tiling["loop_order"] = ("filter block > out row > group of pixel_lanes columns > channel > ky > "
                                           "kx > filter in block (the group's columns in the lanes)")
            if lp.tiling.get("padded_input"):   # the kernel's zero-padded copy of its input
                _scratch(plan, lp, "padded_input", 4 * prod(lp.tiling["padded_input"]))
            if expand:
                lp.tiling["bwn_expand"] = True
                _scratch(plan, lp, "bwn_weights", 4 * lp.in_shapes[0][0] * prod(layer.kernel) * ffb)
            pool = folded_pool(plan, lp)
            if pool is not None:          # the conv's rows go through a ring the pool reads
                _scratch(plan, lp, "pool_ring", 4 * pool.kernel[0] * ffb * lp.out_shape[2])
                lp.tiling["pool_ring_rows"] = pool.kernel[0]
    return plan


def folded_pool(plan: Plan, lp: LayerPlan):
    """The max pool a float/bwn conv applies in its epilogue (fusion.plan_epilogues), else None."""
    if not lp.epilogue:
        return None
    last = plan.net.layer(lp.epilogue[-1])
    return last if last.type == "maxpool" else None


def _column_ranges(layer: Conv2d, lp: LayerPlan, ox0: int, ox1: int, lanes: int) -> list[dict]:
    """The xnor conv's per-pixel loops: output columns [lo, hi) (all of them, or the borders
    around the pixel-lane interior) with the tap ranges ("runs") they meet."""
    wo = lp.out_shape[2]
    spans = [(0, ox0), (ox1, wo)] if lanes else [(0, wo)]
    return [{"columns": [lo, hi], "runs": column_runs(lp.in_shapes[0][2], layer.kernel[1], layer.stride[1],
                                                       layer.padding[1], range(lo, hi))}
            for lo, hi in spans if hi > lo]


def _interior(layer: Conv2d, lp: LayerPlan) -> tuple[int, int]:
    return interior_columns(lp.in_shapes[0][2], layer.kernel[1], layer.stride[1], layer.padding[1],
                            lp.out_shape[2])


def _pixel_groups(layer: Conv2d, lp: LayerPlan, target: Target, expand: bool) -> dict:
    ox0, ox1 = _interior(layer, lp)
    wo = lp.out_shape[2]
    px = float_pixel_lanes(target, layer, wo, expand)
    pb = 0 if px else pixel_block(ox0, ox1, float_block_vectors(target))
    padded = padded_input(layer, lp.in_shapes[0]) if px else None
    if padded:                  # every column reads the padded copy in place
        ox0, ox1 = 0, wo
    inner, border = column_groups(ox0, ox1, wo, px or pb)
    return {"interior_columns": [ox0, ox1], "pixel_lanes": px, "pixel_block": pb, "padded_input": padded,
            "split_columns": bool(padded) and split_columns(layer),
            "interior_groups": inner, "border_groups": border}


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


def plan_network(net: Network, target: Target, predict=None, fuse: bool = True) -> Plan:
    """Run every planning pass; `predict(plan)` (the simulator's cost model) fills LayerPlan.predicted.
    fuse=False keeps every batchnorm and float tensor (each binarize stage runs standalone)."""
    idents = unique_c_idents([layer.name for layer in net.layers])
    layers = [LayerPlan(layer, i, idents[layer.name], [net.shapes[s] for s in layer.inputs], net.shapes[layer.name])
              for i, layer in enumerate(net.layers)]
    plan = plan_epilogues(plan_binarize(Plan(net, target, layers), fuse), fuse)
    for p in (assign_storage, plan_packing, plan_tiling, plan_arena):
        plan = p(plan)
    if plan.arena_size > limits.MAX_ARENA_BYTES:
        raise XnorgenError(str(net.path or net.name), f"the arena needs {plan.arena_size} bytes, more than "
                           f"the generated C can address ({limits.MAX_ARENA_BYTES})")
    if predict is not None:
        predict(plan)
    return plan


def sum_of_buffers(plan: Plan) -> int:
    """What the arena would be without reuse: every buffer at its own aligned offset."""
    return sum(align_up(b.nbytes) for b in plan.buffers.values())


#: The target's kernel-shape knobs (docs/targets.md), recorded in the manifest as the plan used
#: them (`xnorgen tune` chooses them per network).
TARGET_KNOBS = ("filter_block", "float_block", "bwn_expand", "pixel_lanes", "store_tile", "block_prefetch",
                "stream_prefetch")


#: manifest.json's layout version: raised whenever a key is renamed, removed or changes meaning.
MANIFEST_SCHEMA_VERSION = 1


def manifest(plan: Plan) -> dict:
    """The plan as plain JSON-able data (manifest.json)."""
    assert plan.arena_size is not None, "run plan_arena first"
    from xnorgen.codegen.lowering import weight_bytes
    bufs = plan.buffers

    def where(key):
        if key in (INPUT, OUTPUT, ELIDED):
            return {"storage": key[1:]}
        return {"storage": "arena", "buffer": key, "offset": bufs[key].offset, "bytes": bufs[key].nbytes}

    layers = []
    for lp in plan.layers:
        layer = lp.layer
        attrs = {k: v for k, v in vars(layer).items() if k not in ("name", "type", "inputs", "params")}
        layers.append({
            "name": layer.name, "c_name": lp.ident, "type": layer.type, "mode": getattr(layer, "mode", "float"),
            "step": lp.step,
            "attributes": attrs, "inputs": list(layer.inputs), "in_shapes": [list(s) for s in lp.in_shapes],
            "out_shape": list(lp.out_shape), "input_storage": [where(k) for k in lp.inputs],
            "output_storage": where(lp.output),
            "scratch": {r: where(b) for r, b in lp.scratch.items()},
            "packing": lp.packing, "tiling": lp.tiling, "weight_bytes": weight_bytes(lp, plan.target),
            "predicted": lp.predicted,
            "fusion": {"binarize_in": lp.binarize_in, "binarize_out": lp.binarize_out,
                       "stages_before": lp.stages_before, "folded_into": lp.folded_into,
                       "epilogue": lp.epilogue},
        })
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "name": plan.net.name, "target": plan.target.name, "word_bits": plan.target.word_bits,
        "target_knobs": {k: getattr(plan.target, k) for k in TARGET_KNOBS}, "tuned": plan.target.tuned or None,
        "input_shape": list(plan.net.input_shape), "output": plan.net.output,
        "output_shape": list(plan.net.output_shape), "input_size": plan.input_size,
        "output_size": plan.output_size, "arena_size": plan.arena_size, "arena_alignment": ALIGN,
        "arena_without_reuse": sum_of_buffers(plan),
        "predicted_cycles": sum(lp.predicted["cycles"] for lp in plan.layers) if all(lp.predicted for lp in plan.layers) else None,
        "buffers": [{"name": b.name, "offset": b.offset, "bytes": b.nbytes, "live": [b.first, b.last]}
                    for b in sorted(bufs.values(), key=lambda b: (b.offset, b.name))],
        "layers": layers,
        "binarize_stages": [{"name": st.name, "tensor": st.tensor, "reads": st.source, "batchnorm": st.bn,
                             "readers": st.readers, "runs_in": st.runs_in, "in_epilogue": st.in_epilogue,
                             "words_per_pixel": st.words_per_pixel, "packed": where(st.packed),
                             "amap": where(st.amap) if st.amap else None} for st in plan.binarize.values()],
        "elided_tensors": sorted(plan.elided),
    }
