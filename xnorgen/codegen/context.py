"""Small helpers every kernel kind's template context uses: arena pointers and window shapes.

Needs: a Plan whose arena is placed (plan_arena). Guarantees: only numbers and the fixed
words input/output reach the text (the storage keys themselves never do).
"""
from __future__ import annotations

import numpy as np

from xnorgen.naming import arena_symbol
from xnorgen.plan.ir import INPUT, OUTPUT, LayerPlan, Plan
from xnorgen.plan.tiling import interior_columns


def pointer(plan: Plan, key: str, const: bool, ctype: str = "float") -> str:
    """The C expression for storage `key`: the caller's input/output, or its named arena offset."""
    if key == INPUT:
        return "input"
    if key == OUTPUT:
        return "output"
    assert plan.buffers[key].ident, "run name_buffers first"
    q = "const " if const else ""
    return f"({q}{ctype} *)(a + {arena_symbol(plan.buffers[key].ident)})"


def io_args(lp: LayerPlan, plan: Plan) -> list[str]:
    """A float kernel's usual arguments: each input (const), then the output."""
    return [pointer(plan, key, True) for key in lp.inputs] + [pointer(plan, lp.output, False)]


def window(k: dict, layer, in_shape, out_shape) -> dict:
    """Shapes of a windowed layer, and its interior columns [OX0, OX1): every tap in bounds along x."""
    c, h, w = in_shape
    k.update(C=c, H=h, W=w, HO=out_shape[1], WO=out_shape[2], KH=layer.kernel[0], KW=layer.kernel[1],
             SH=layer.stride[0], SW=layer.stride[1], PH=layer.padding[0], PW=layer.padding[1])
    ox0, ox1 = interior_columns(w, k["KW"], k["SW"], k["PW"], k["WO"])
    k.update(OX0=ox0, OX1=ox1)
    return k


def c_float(v: float) -> str:
    """v as a C float literal that reads back as the same float32."""
    assert np.isfinite(np.float32(v)), f"constant {v} is not a finite float32: the front end checks weights"
    s = f"{float(np.float32(v)):.9g}"
    return (s if ("." in s or "e" in s) else s + ".0") + "f"


def affine(expr: str, mul: int = 1, add: int = 0) -> str:
    """`expr * mul + add` as C with the constants folded, so the generated C reads as a person
    would write it: affine("ox", 1, -1) is "ox - 1", affine("ox", 2) "ox * 2". expr must be
    an integer expression (x + 0 is not x for a float -0.0) of one term or in parentheses.
    A Jinja filter in the templates: {{ "ox" | affine(k.SW, -k.PW) }}."""
    term = "0" if mul == 0 else expr if mul == 1 else f"{_atom(expr)} * {mul}"
    if add == 0 or term == "0":
        return term if add == 0 else str(add)
    return f"{term} + {add}" if add > 0 else f"{term} - {-add}"


def _atom(expr: str) -> str:
    """expr parenthesized unless it is one identifier or number, or already in parentheses."""
    if expr.replace("_", "a").isalnum():
        return expr
    depth = 0
    for i, ch in enumerate(expr):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and i < len(expr) - 1:
            return f"({expr})"              # the first parenthesis closes before the end
    return expr if expr.startswith("(") else f"({expr})"
