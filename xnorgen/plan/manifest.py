"""manifest.json: the plan IR dumped as plain JSON data, so a wrong number in the C can be
traced to the pass that decided it."""
from __future__ import annotations

from xnorgen.kinds import weight_bytes
from xnorgen.plan.core import sum_of_buffers
from xnorgen.plan.hooks import isa_hooks
from xnorgen.plan.ir import ALIGN, ELIDED, INPUT, OUTPUT, Plan, record_json

#: The target's kernel-shape knobs (docs/targets.md), recorded in the manifest as the plan used
#: them (`xnorgen tune` chooses them per network).
TARGET_KNOBS = ("filter_block", "float_block", "bwn_expand", "pixel_lanes", "store_tile", "block_prefetch",
                "stream_prefetch", "batch_dense")


#: manifest.json's layout version: raised whenever a key is renamed, removed or changes meaning.
MANIFEST_SCHEMA_VERSION = 1


def manifest(plan: Plan) -> dict:
    """The plan as plain JSON-able data (manifest.json)."""
    assert plan.arena_size is not None, "run plan_arena first"
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
            "kind": lp.kind, "packing": record_json(lp.packing), "tiling": record_json(lp.tiling), "weight_bytes": weight_bytes(lp, plan.target),
            "predicted": lp.predicted, "split": record_json(lp.split),
            "fusion": {"binarize_in": lp.binarize_in, "binarize_out": lp.binarize_out, "bit_pool": lp.bit_pool,
                       "stages_before": lp.stages_before, "folded_into": lp.folded_into,
                       "epilogue": lp.epilogue},
        })
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "name": plan.net.name, "target": plan.target.name, "word_bits": plan.target.word_bits,
        "isa_hooks": {"header": f"xg_{plan.target.popcount}.h", "provides": isa_hooks(plan.target)},
        "target_knobs": {k: getattr(plan.target, k) for k in TARGET_KNOBS}, "tuned": plan.target.tuned or None,
        "input_shape": list(plan.net.input_shape), "output": plan.net.output,
        "output_shape": list(plan.net.output_shape), "input_size": plan.input_size,
        "output_size": plan.output_size, "passes": plan.passes, "arena_size": plan.arena_size, "arena_alignment": ALIGN,
        "arena_without_reuse": sum_of_buffers(plan),
        "predicted_cycles": sum(lp.predicted["cycles"] for lp in plan.layers) if all(lp.predicted for lp in plan.layers) else None,
        "buffers": [{"name": b.name, "c_name": b.ident, "offset": b.offset, "bytes": b.nbytes, "live": [b.first, b.last]}
                    for b in sorted(bufs.values(), key=lambda b: (b.offset, b.name))],
        "layers": layers,
        "binarize_stages": [{"name": st.name, "tensor": st.tensor, "reads": st.source, "batchnorm": st.bn,
                             "readers": st.readers, "runs_in": st.runs_in, "in_epilogue": st.in_epilogue,
                             "pool": st.pool, "prepool": where(st.prepool) if st.prepool else None,
                             "words_per_pixel": st.words_per_pixel, "packed": where(st.packed), "split": record_json(st.split),
                             "amap": where(st.amap) if st.amap else None} for st in plan.binarize.values()],
        "elided_tensors": sorted(plan.elided),
    }
