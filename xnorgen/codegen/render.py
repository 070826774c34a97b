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
from math import prod

import jinja2
import numpy as np

from xnorgen.frontend.description import BatchNorm, Conv2d, Dense, Pool
from xnorgen.plan.fusion import residual_of
from xnorgen.codegen.lowering import const_c_type, layer_consts, mask_bytes
from xnorgen.naming import const_prefix, kernel_symbol, stage_symbol
from xnorgen.plan.core import INPUT, OUTPUT, LayerPlan, Plan, folded_pool, is_alias, manifest
from xnorgen.plan.tiling import BINARIZE_TILE, LANE_FILTERS, SUM_LANES, filter_block, float_filter_block, interior_columns

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


def _c_float(v: float) -> str:
    assert np.isfinite(np.float32(v)), f"constant {v} is not a finite float32: the front end checks weights"
    s = f"{float(np.float32(v)):.9g}"
    return (s if ("." in s or "e" in s) else s + ".0") + "f"


def _c_array_body(c, word_bits: int) -> str:
    if c.kind == "word":
        hexw = word_bits // 4
        suffix = "ULL" if word_bits == 64 else "u"
        items = [f"0x{int(v):0{hexw}x}{suffix}" for v in c.values]
        per_line = 4 if word_bits == 64 else 6
    elif c.kind in ("int", "mask"):
        items, per_line = [str(int(v)) + ("u" if c.kind == "mask" else "") for v in c.values], 12
    else:
        items = [_c_float(v) for v in c.values]
        per_line = 6
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n".join("    " + ln for ln in lines)


def _ptr(plan: Plan, key: str, const: bool, ctype: str = "float") -> str:
    if key == INPUT:
        return "input"
    if key == OUTPUT:
        return "output"
    q = "const " if const else ""
    return f"({q}{ctype} *)(a + {plan.buffers[key].offset})"


def _window(k: dict, layer, in_shape, out_shape):
    """Shapes of a windowed layer, and its interior columns [OX0, OX1): every tap in bounds along x."""
    c, h, w = in_shape
    k.update(C=c, H=h, W=w, HO=out_shape[1], WO=out_shape[2], KH=layer.kernel[0], KW=layer.kernel[1],
             SH=layer.stride[0], SW=layer.stride[1], PH=layer.padding[0], PW=layer.padding[1])
    ox0, ox1 = interior_columns(w, k["KW"], k["SW"], k["PW"], k["WO"])
    k.update(OX0=ox0, OX1=ox1)


def stage_context(st, plan: Plan) -> dict:
    """A standalone binarize stage (fusion.Binarize) as a kernel."""
    net, idents = plan.net, {lp.layer.name: lp.ident for lp in plan.layers}
    ident = idents.get(st.tensor, "input")
    k = {"template": "kernel_binarize.c.j2", "name": f"binarize_{ident}", "fn": stage_symbol(net.name, ident),
         "tensor": ident, "C": st.channels, "HW": st.hw, "WPP": st.words_per_pixel, "has_a": st.needs_amap,
         "bn": st.bn, "bn_sym": const_prefix(net.name, idents[st.bn]) if st.bn else None, "BT": BINARIZE_TILE}
    args = [_ptr(plan, plan.storage[st.source], True), _ptr(plan, st.packed, False, "xg_word_t")]
    if st.needs_amap:
        args.append(_ptr(plan, st.amap, False))
    k["call"] = f"{k['fn']}({', '.join(args)})"
    return k


def _xnor_conv(k: dict, lp: LayerPlan, plan: Plan) -> list[str]:
    """Context and arguments of an xnor conv: it reads its stage's packed words (and A), and
    writes floats or, with an epilogue stage, the packed words (and A) of the next layer."""
    layer, fb = lp.layer, lp.tiling["filter_block"]
    st = plan.binarize[lp.binarize_in]
    k.update(template="kernel_conv2d_xnor.c.j2", WPP=lp.packing["words_per_pixel"], FB=fb,
             NB=lp.tiling["filter_blocks"], has_k=layer.scale_input, out_stage=None, PX=lp.tiling["pixel_lanes"],
             RANGES=lp.tiling["column_ranges"], residual=None, TP=lp.tiling["store_tile"],
             PFL=lp.tiling["next_block_prefetch"])
    args = [_ptr(plan, st.packed, True, "xg_word_t")]
    if layer.scale_input:
        args += [_ptr(plan, st.amap, True), _ptr(plan, lp.scratch["kmap"], False)]
    if lp.binarize_out:
        out = plan.binarize[lp.binarize_out]
        bn_ident = next(p.ident for p in plan.layers if p.layer.name == out.bn)
        tensor = next(p.ident for p in plan.layers if p.layer.name == out.tensor)
        k["out_stage"] = {"stage": f"binarize_{tensor}", "bn": bn_ident, "bn_sym": const_prefix(plan.net.name, bn_ident),
                          "WPP": out.words_per_pixel, "has_a": out.needs_amap}
        args.append(_ptr(plan, out.packed, False, "xg_word_t"))
        if out.needs_amap:
            args.append(_ptr(plan, out.amap, False))
    else:
        args.append(_ptr(plan, lp.output, False))
        res = residual_of(plan, lp)
        if res is not None:           # a folded residual add: out = conv + res
            args.append(_ptr(plan, plan.storage[res], True))
            k["residual"] = lp.epilogue[0]
    return args


def kernel_context(lp: LayerPlan, plan: Plan) -> dict | None:
    """Everything one kernel template needs, or None for a layer with no code (a flatten view,
    a batchnorm folded into a binarize stage)."""
    layer, net = lp.layer, plan.net
    if is_alias(layer, net) or lp.folded_into:
        return None
    k = {"name": lp.ident, "fn": kernel_symbol(net.name, lp.ident), "sym": const_prefix(net.name, lp.ident),
         "mode": getattr(layer, "mode", None)}
    if isinstance(layer, Conv2d) and layer.mode == "xnor":    # reads packed words, not its float input
        args = []
    else:
        args = [_ptr(plan, key, True) for key in lp.inputs] + [_ptr(plan, lp.output, False)]
    if isinstance(layer, Conv2d):
        _window(k, layer, lp.in_shapes[0], lp.out_shape)
        k["OX0"], k["OX1"] = lp.tiling["interior_columns"]    # the plan's (all columns with a padded copy)
        k.update(F=layer.filters, PV=layer.pad_value, has_bias=layer.bias,   # PV: nonzero for xnor only
                 has_alpha=layer.mode != "float" and layer.scale_weight)
        if layer.mode == "xnor":
            args = _xnor_conv(k, lp, plan)
        else:
            idents = {p.layer.name: p.ident for p in plan.layers}
            post = [{"name": idents[n], "op": plan.net.layer(n).type, "sym": const_prefix(net.name, idents[n])}
                    for n in lp.epilogue
                    if plan.net.layer(n).type != "maxpool"]
            k.update(template="kernel_conv2d_real.c.j2", FB=lp.tiling["filter_block"],
                     NB=lp.tiling["filter_blocks"], post=post, PB=lp.tiling["pixel_block"],
                     IG=lp.tiling["interior_groups"], BG=lp.tiling["border_groups"], FPX=lp.tiling["pixel_lanes"],
                     pool=None)
            pool = folded_pool(plan, lp)
            if pool is not None:            # the conv's rows go to a ring the pool reads
                pk = {"name": next(p.ident for p in plan.layers if p.layer is pool)}
                _window(pk, pool, lp.out_shape, plan.net.shapes[pool.name])
                k["pool"] = pk
                args.append(_ptr(plan, lp.scratch["pool_ring"], False))
            k["padin"] = None
            if lp.tiling.get("padded_input"):   # the kernel reads its zero-padded copy, in place
                c, hp, wp = lp.tiling["padded_input"]
                k["padin"] = {"H": k["H"], "W": k["W"], "PH": k["PH"], "PW": k["PW"],
                              "HALF": (wp + 1) // 2 if lp.tiling["split_columns"] else 0}
                k.update(H=hp, W=wp, PH=0, PW=0)
                args.append(_ptr(plan, lp.scratch["padded_input"], False))
            k["expand"] = bool(lp.tiling.get("bwn_expand"))
            if k["expand"]:                     # the block's masks as +-1.0 floats
                args.append(_ptr(plan, lp.scratch["bwn_weights"], False))
    elif isinstance(layer, Dense):
        n = prod(lp.in_shapes[0])
        k.update(template="kernel_dense.c.j2", N=n, U=layer.units, NW=-(-n // plan.target.word_bits),
                 NB=lp.tiling["filter_blocks"], FFB=lp.tiling["filter_block"],
                 has_bias=layer.bias, has_alpha=layer.mode != "float" and layer.scale_weight,
                 has_k=layer.mode == "xnor" and layer.scale_input)
        if layer.mode == "xnor":
            k["PF"] = lp.tiling["prefetch_bytes"]
            args.append(_ptr(plan, lp.scratch["packed"], False, "xg_word_t"))
    elif isinstance(layer, BatchNorm):
        s = lp.in_shapes[0]
        k.update(template="kernel_batchnorm.c.j2", C=s[0], HW=prod(s[1:]))
    elif isinstance(layer, Pool):
        _window(k, layer, lp.in_shapes[0], lp.out_shape)
        k.update(template="kernel_pool.c.j2", op=layer.type)
    else:
        op = {"flatten": "copy"}.get(layer.type, layer.type)
        k.update(template="kernel_elementwise.c.j2", op=op, N=prod(lp.out_shape))
    k["call"] = f"{k['fn']}({', '.join(args)})"
    return k


def _net_context(plan: Plan) -> dict:
    net, t = plan.net, plan.target
    return {"name": net.name, "PREFIX": net.name.upper(), "target": t.name, "input_size": plan.input_size,
            "output_size": plan.output_size, "arena_size": plan.arena_size,
            "input_shape": list(net.input_shape), "output_shape": list(net.output_shape),
            "word_bits": t.word_bits, "word_t": f"uint{t.word_bits}_t", "popcount": t.popcount,
            "cc": t.cc, "ar": t.ar, "cflags": " ".join(t.cflags), "filter_block": filter_block(t),
            "float_block": float_filter_block(t), "mask_bits": 8 * mask_bytes(t), "fma": t.fma,
            "pixel_lanes": t.pixel_lanes, "lane_filters": LANE_FILTERS, "store_tile": t.store_tile,
            "stream_prefetch": t.stream_prefetch,
            "binarize_tile": BINARIZE_TILE, "sum_lanes": SUM_LANES}


def render(plan: Plan) -> dict[str, str]:
    """All generated files of one network, by file name."""
    assert plan.arena_size is not None, "run plan_arena first"
    net = _net_context(plan)
    consts = []
    for lp in plan.layers:
        for c in layer_consts(lp, plan.target):
            consts.append({"symbol": f"{const_prefix(plan.net.name, lp.ident)}_{c.suffix}", "length": len(c.values),
                           "ctype": const_c_type(c.kind, plan.target).ctype,
                           "comment": f"layer {lp.ident}: {c.suffix}",
                           "body": _c_array_body(c, plan.target.word_bits)})
    kernels = []
    for lp in plan.layers:
        kernels += [stage_context(plan.binarize[name], plan) for name in lp.stages_before]
        k = kernel_context(lp, plan)
        if k is not None:
            kernels.append(k)
    name = plan.net.name
    checked_context({"net": net, "kernels": kernels, "consts": consts})
    return {
        f"{name}.h": _ENV.get_template("header.h.j2").render(net=net),
        f"{name}.c": _ENV.get_template("network.c.j2").render(net=net, kernels=kernels),
        f"{name}_weights.h": _ENV.get_template("weights.h.j2").render(net=net, consts=consts),
        f"{name}_weights.c": _ENV.get_template("weights.c.j2").render(net=net, consts=consts),
        "Makefile": _ENV.get_template("Makefile.j2").render(net=net),
        "manifest.json": json.dumps(manifest(plan), indent=1, default=_json_default) + "\n",
    }


def _json_default(o):
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serializable: {type(o)}")
