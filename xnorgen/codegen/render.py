"""Stage 4, codegen: render the plan into C sources, a Makefile and manifest.json.

Needs: a Plan (plan.plan_network) whose layers carry weights.
Guarantees: render() returns {file name: text}, a pure function of the plan;
all C comes from templates/ (Jinja, StrictUndefined); Python only computes the
numbers each template needs (kernel_context) and formats constant arrays.
"""
from __future__ import annotations

import json
import re
from importlib import resources

import jinja2
import numpy as np

from xnorgen import kinds
from xnorgen.codegen.context import affine, c_float, pointer
from xnorgen.codegen.lowering import const_c_type, mask_bytes
from xnorgen.naming import arena_symbol, const_prefix, infer_symbol, stage_name, kernel_symbol, stage_symbol
from xnorgen.plan.ir import LayerPlan, Plan, is_alias
from xnorgen.plan.manifest import manifest
from xnorgen.plan.hooks import isa_config
from xnorgen.plan.tiling import BINARIZE_TILE

#: Most parts <name>_infer_parallel accepts (<NAME>_MAX_PARTS): xg_pool's thread limit.
MAX_PARTS = 256
#: Samples a dense layer's batch variant takes per pass over its weights (<name>_infer_batch).
BATCH_BLOCK = 16

#: What a string handed to a template may contain: identifiers, numbers, C operators, spaces and
#: line breaks. No quote, backslash, `#`, `$` or non-ASCII character, and (checked separately) no
#: comment delimiter and no `??` (a trigraph can end a comment). Whatever a net.yaml holds, it
#: reaches the templates only as checked identifiers and numbers (contract section 7); this check
#: of every context makes a lapse an internal error instead of C that runs.
_SAFE_TEXT = re.compile(r"[A-Za-z0-9_ \n,.;:+\-*/()\[\]{}<>=&|!~%^?]*\Z")


def checked_context(value, path: str = "context"):
    """value, after checking every string inside it (dicts, lists, tuples) against _SAFE_TEXT."""
    if isinstance(value, dict):
        for k, v in value.items():
            checked_context(v, f"{path}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            checked_context(v, f"{path}[{i}]")
    elif isinstance(value, str):
        if not _SAFE_TEXT.match(value) or any(s in value for s in ("/*", "*/", "//", "??")):
            raise AssertionError(f"unsafe text for a generated file at {path}: {value[:80]!r} "
                                 "(give templates identifiers from naming.py and numbers only)")
    elif value is not None and not isinstance(value, (bool, int, float, np.integer, np.floating)):
        raise AssertionError(f"{path}: a template gets plain data, not {type(value).__name__}")
    return value


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(resources.files("xnorgen.templates"))),
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
_ENV.filters["affine"] = affine


def _c_array_body(c, word_bits: int) -> str:
    if c.kind == "word":
        hexw = word_bits // 4
        suffix = "ULL" if word_bits == 64 else "u"
        items = [f"0x{int(v):0{hexw}x}{suffix}" for v in c.values]
        per_line = 4 if word_bits == 64 else 6
    elif c.kind in ("int", "mask"):
        items, per_line = [str(int(v)) + ("u" if c.kind == "mask" else "") for v in c.values], 12
    else:
        items = [c_float(v) for v in c.values]
        per_line = 6
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n".join("    " + ln for ln in lines)


def stage_context(st, plan: Plan) -> dict:
    """A standalone binarize stage (fusion.Binarize) as a kernel."""
    net, idents = plan.net, {lp.layer.name: lp.ident for lp in plan.layers}
    ident = idents.get(st.tensor, "input")
    k = {"template": "kernel_binarize.c.j2", "name": stage_name(ident), "fn": stage_symbol(net.name, ident),
         "tensor": ident, "C": st.channels, "HW": st.hw, "WPP": st.words_per_pixel, "has_a": st.needs_amap,
         "bn": st.bn, "bn_sym": const_prefix(net.name, idents[st.bn]) if st.bn else None, "BT": BINARIZE_TILE}
    args = [pointer(plan, plan.storage[st.source], True), pointer(plan, st.packed, False, "xg_word_t")]
    if st.needs_amap:
        args.append(pointer(plan, st.amap, False))
    return with_calls(k, args, st.split)


def with_calls(k: dict, args: list[str], split) -> dict:
    """k plus how the drivers call its kernel: `call` runs it whole (a split kernel over its
    range [0, extent)); a split kernel also gets `split` (extent, task), `part_call` (over
    [lo, hi), in its part's task) and, with a prologue, `pre_call` (the serial step before)."""
    fn = k["fn"]

    def call(name: str, extra: list[str]) -> str:
        return f"{name}({', '.join(args + extra)})"
    k.update(call=call(fn, []), split=None, part_call=None, pre_call=None, batch=None)
    if k.get("batch_arg_types"):        # a kernel with a batch variant: its arguments, one per sample
        k["batch"] = {"fn": f"{fn}_batch", "args": [{"expr": a, "type": t} for a, t in zip(args, k["batch_arg_types"])]}
    if split is not None:
        k.update(call=call(fn, ["0", str(split.extent)]), part_call=call(fn, ["lo", "hi"]),
                 pre_call=call(f"{fn}_pre", []) if split.prologue else None,
                 split={"extent": split.extent, "axis": split.axis, "task": f"{fn}_part"})
    return k


def kernel_context(lp: LayerPlan, plan: Plan) -> dict | None:
    """Everything one kernel template needs, or None for a layer with no code (a flatten view,
    a batchnorm folded into a binarize stage). The kind (xnorgen.kinds) supplies its own part."""
    if is_alias(lp.layer, plan.net) or lp.folded_into:
        return None
    kind = kinds.kind(lp)
    k, args = kind.context(lp, plan)
    k.update(template=kind.template, name=lp.ident, fn=kernel_symbol(plan.net.name, lp.ident),
             sym=const_prefix(plan.net.name, lp.ident), mode=getattr(lp.layer, "mode", None))
    return with_calls(k, args, lp.split)


def batch_segments(kernels: list[dict]) -> list[dict]:
    """The batch entry point's order: runs of kernels that go sample by sample (their tensors stay
    in cache from one kernel to the next), split at each kernel with a batch variant, which runs
    once for a block of samples (its weights read once per block)."""
    segments: list[dict] = []
    for k in kernels:
        if k["batch"] is not None:
            segments.append({"batched": k, "kernels": []})
        elif segments and not segments[-1]["batched"]:
            segments[-1]["kernels"].append(k)
        else:
            segments.append({"batched": None, "kernels": [k]})
    return segments


def kernel_contexts(plan: Plan) -> list[dict]:
    """Every kernel the driver calls, in call order (each with its `fn` and its `call`)."""
    kernels = []
    for lp in plan.layers:
        kernels += [stage_context(plan.binarize[name], plan) for name in lp.stages_before]
        k = kernel_context(lp, plan)
        if k is not None:
            kernels.append(k)
    return kernels


def _arena_context(plan: Plan) -> list[dict]:
    """Each arena buffer's offset constant, with what it holds and when, in offset order."""
    return [{"symbol": arena_symbol(b.ident), "offset": b.offset, "bytes": b.nbytes, "first": b.first,
             "last": b.last} for b in sorted(plan.buffers.values(), key=lambda b: (b.offset, b.ident))]


def _net_context(plan: Plan) -> dict:
    net, t = plan.net, plan.target
    return {"arena": _arena_context(plan), "name": net.name, "infer": infer_symbol(net.name), "PREFIX": net.name.upper(), "target": t.name, "input_size": plan.input_size,
            "output_size": plan.output_size, "arena_size": plan.arena_size,
            "input_shape": list(net.input_shape), "output_shape": list(net.output_shape),
            "word_bits": t.word_bits, "word_t": f"uint{t.word_bits}_t", "popcount": t.popcount,
            "cc": t.cc, "ar": t.ar, "cflags": " ".join(t.cflags), "mask_bits": 8 * mask_bytes(t), "fma": t.fma,
            "stream_prefetch": t.stream_prefetch, "parallel": t.hosted, "max_parts": MAX_PARTS, "batch_block": BATCH_BLOCK,
            **isa_config(t)}


def render(plan: Plan) -> dict[str, str]:
    """All generated files of one network, by file name."""
    assert plan.arena_size is not None, "run plan_arena first"
    net = _net_context(plan)
    consts = []
    for lp in plan.layers:
        for c in kinds.layer_consts(lp, plan.target, plan):
            consts.append({"symbol": f"{const_prefix(plan.net.name, lp.ident)}_{c.suffix}", "length": len(c.values),
                           "ctype": const_c_type(c.kind, plan.target).ctype,
                           "comment": f"layer {lp.ident}: {c.suffix}",
                           "body": _c_array_body(c, plan.target.word_bits)})
    kernels = kernel_contexts(plan)
    name = plan.net.name
    hooks = {f: _isa_header(f) for f in isa_headers(plan.target)}
    pool = {f: _host_file(f) for f in POOL_FILES} if plan.target.hosted else {}
    checked_context({"net": net, "kernels": kernels, "consts": consts})
    return {
        f"{name}.h": _ENV.get_template("header.h.j2").render(net=net),
        f"{name}.c": _ENV.get_template("network.c.j2").render(net=net, kernels=kernels,
                                                               segments=batch_segments(kernels)),
        f"{name}_weights.h": _ENV.get_template("weights.h.j2").render(net=net, consts=consts),
        f"{name}_weights.c": _ENV.get_template("weights.c.j2").render(net=net, consts=consts),
        **hooks, **pool,
        "Makefile": _ENV.get_template("Makefile.j2").render(net=net, headers=sorted(hooks)),
        "manifest.json": json.dumps(manifest(plan), indent=1, default=_json_default) + "\n",
    }


def isa_headers(target) -> list[str]:
    """The fixed hook headers (templates/isa/) a network for `target` includes: the base, the
    target's ISA header (its `popcount`), the scalar block every ISA header falls back on, and
    the portable rest."""
    return ["xg_base.h", f"xg_{target.popcount}.h", "xg_scalar.h", "xg_common.h"]


def _isa_header(fname: str) -> str:
    return (resources.files("xnorgen.templates") / "isa" / fname).read_text()


#: The thread pool shipped beside a hosted target's library (templates/host/): one way to supply
#: <name>_infer_parallel's parallel-for; not part of lib<name>.a.
POOL_FILES = ("xg_pool.h", "xg_pool.c")


def _host_file(fname: str) -> str:
    return (resources.files("xnorgen.templates") / "host" / fname).read_text()


def _json_default(o):
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serializable: {type(o)}")
