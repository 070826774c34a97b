"""Lowering: a layer's real-valued parameters -> the constant arrays its C kernel reads.

Needs: a Plan (plan.plan_network) whose layers carry params (weights.attach_weights).
Guarantees: binary weights bit-packed with packing.pack_signs in the layout the
kernel templates index (xnor conv: [F/FB][kh][kw][words][FB]; xnor dense:
[U/FB][words][FB]; bwn conv: [F/FB][C*kh*kw] masks of FB sign bits; float conv:
[F/FB][C*kh*kw][FB]; bwn dense: [units][words]); α, bias and batchnorm (mean, γ/sqrt(var+eps), β) as float32.
The scales come from reference.alpha: the golden model is the one definition.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from xnorgen.frontend.description import BatchNorm, Conv2d, Dense
from xnorgen.packing import pack_signs, pad_word_pattern, popcount, words_for
from xnorgen.reference import alpha
from xnorgen.target import Target

if TYPE_CHECKING:                # annotations only: plan.manifest imports this module
    from xnorgen.plan.core import LayerPlan


@dataclass
class Const:
    suffix: str          # symbol is <net>_<layer ident>_<suffix>
    kind: str            # "word" (packed bits), "float", "int" (int32) or "mask" (FB sign bits)
    values: np.ndarray   # 1-D

    def itemsize(self, target: Target) -> int:
        return const_c_type(self.kind, target).itemsize


class ConstType(NamedTuple):
    """How one element of a constant kind is stored on a target."""
    ctype: str           # C element type of its array in <name>_weights.c
    itemsize: int        # bytes of one element: sizeof(ctype)
    dtype: np.dtype      # numpy dtype holding the same values the C array holds (the simulator's copy)


def const_c_type(kind: str, target: Target) -> ConstType:
    """The one table of constant kinds, read by codegen's declarations, Const.itemsize (so
    crossbuild.const_bytes) and the simulator's typed constants.

    Needs: kind one of Const's kinds ("word", "float", "int", "mask"); KeyError otherwise.
    Guarantees: dtype.itemsize == itemsize; words and masks unsigned, "int" int32.
    """
    bits = {"word": target.word_bits, "float": 32, "int": 32, "mask": 8 * mask_bytes(target)}[kind]
    if kind == "float":
        return ConstType("float", bits // 8, np.dtype(np.float32))
    sign = "" if kind == "int" else "u"
    return ConstType(f"{sign}int{bits}_t", bits // 8, np.dtype(f"{sign}int{bits}"))


def mask_bytes(target: Target) -> int:
    """Bytes of one bwn sign mask: the float filter block's bits, in the smallest C integer."""
    from xnorgen.plan.tiling import float_filter_block
    return max(1, float_filter_block(target) // 8)


def _real_weights(layer, w, fb) -> list[Const]:
    """float conv/dense: weights [F/FB][fan-in][FB]; bwn: one FB-bit sign mask per (block, fan-in element)."""
    flat = w.reshape(w.shape[0], -1)
    if layer.mode == "float":
        return [Const("w", "float", interleave_filters(flat, fb).reshape(-1))]
    neg = interleave_filters((flat < 0).astype(np.uint64), fb)            # [NB, C*kh*kw, FB]
    masks = (neg << np.arange(fb, dtype=np.uint64)).sum(axis=-1, dtype=np.uint64)
    return [Const("w", "mask", masks.reshape(-1))]


def layer_consts(lp: LayerPlan, target: Target) -> list[Const]:
    layer, wb = lp.layer, target.word_bits
    consts = []
    if isinstance(layer, (Conv2d, Dense)):
        w = layer.params["weight"]
        if layer.mode != "xnor":
            consts += _real_weights(layer, w, lp.tiling["filter_block"])
        else:
            bits = w.transpose(0, 2, 3, 1) if isinstance(layer, Conv2d) else w   # conv: channels packed per tap
            packed = pack_signs(bits, wb)
            consts.append(Const("w", "word", interleave_filters(packed, lp.tiling["filter_block"]).reshape(-1)))
            if isinstance(layer, Conv2d) and layer.pad_value != 0:
                pad = pad_word_pattern(w.shape[1], layer.pad_value, wb)
                consts.append(Const("padpop", "int", popcount(packed ^ pad).sum(axis=-1).reshape(-1)))
        if layer.mode != "float" and layer.scale_weight:
            consts.append(Const("alpha", "float", alpha(layer, w)))
        if layer.bias:
            consts.append(Const("bias", "float", layer.params["bias"]))
    elif isinstance(layer, BatchNorm):
        # y = (x - mean) * scale + beta: the golden model's order, so x == mean gives beta exactly
        p = layer.params
        consts.append(Const("mean", "float", p["mean"]))
        consts.append(Const("scale", "float", p["gamma"] / np.sqrt(p["var"] + layer.eps)))
        consts.append(Const("beta", "float", p["beta"]))
    return consts


def interleave_filters(packed: np.ndarray, fb: int) -> np.ndarray:
    """[F, ...] -> [ceil(F/FB), ..., FB]: FB consecutive filters' words side by side, zero past F."""
    f = packed.shape[0]
    nb = -(-f // fb)
    padded = np.zeros((nb * fb,) + packed.shape[1:], dtype=packed.dtype)
    padded[:f] = packed
    blocked = padded.reshape((nb, fb) + packed.shape[1:])
    return np.moveaxis(blocked, 1, -1)


def deinterleave_filters(blocked: np.ndarray, f: int) -> np.ndarray:
    """Inverse of interleave_filters: [NB, ..., FB] -> [F, ...]."""
    x = np.moveaxis(blocked, -1, 1)
    return x.reshape((-1,) + x.shape[2:])[:f]


def weight_bytes(lp: LayerPlan, target: Target) -> dict | None:
    """Bytes of the layer's weights as float32 and as stored (packed bits + α for binary modes).

    Computed from shapes alone, so it works on descriptions without weights; a test holds it
    equal to the bytes layer_consts actually emits.
    """
    layer = lp.layer
    if isinstance(layer, BatchNorm):
        return {"float32": 16 * lp.out_shape[0], "packed": 12 * lp.out_shape[0]}   # γ β μ σ² -> μ, γ/σ, β
    if not isinstance(layer, (Conv2d, Dense)):
        return None
    fan_in = prod(lp.in_shapes[0]) if isinstance(layer, Dense) else lp.in_shapes[0][0] * prod(layer.kernel)
    n_out = layer.units if isinstance(layer, Dense) else layer.filters
    bias = 4 * n_out if layer.bias else 0
    f32 = 4 * n_out * fan_in + bias
    if layer.mode == "float":
        fb = lp.tiling["filter_block"]
        return {"float32": f32, "packed": 4 * -(-n_out // fb) * fb * fan_in + bias}
    if isinstance(layer, Conv2d) and layer.mode == "xnor":
        fb = lp.tiling["filter_block"]
        words = -(-n_out // fb) * fb * prod(layer.kernel) * words_for(lp.in_shapes[0][0], target.word_bits)
        padpop = 4 * n_out * prod(layer.kernel) if layer.pad_value != 0 else 0   # int32 per filter and tap
    elif layer.mode == "xnor":
        fb = lp.tiling["filter_block"]
        words, padpop = -(-n_out // fb) * fb * words_for(fan_in, target.word_bits), 0
    else:                                    # bwn: sign masks of mask_bytes each
        masks = -(-n_out // lp.tiling["filter_block"]) * fan_in * mask_bytes(target)
        return {"float32": f32, "packed": masks + (4 * n_out if layer.scale_weight else 0) + bias}
    packed = words * target.word_bytes + padpop + (4 * n_out if layer.scale_weight else 0) + bias
    return {"float32": f32, "packed": packed}
