"""Lowering: the constant arrays C kernels read, and how each kind of array is stored.

Each kernel kind (xnorgen.kinds.<kind>.consts) lowers its own layer's parameters into
Consts; this module holds what they share: the Const record, the one table of constant kinds
(const_c_type) and the filter interleaving their layouts use.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from xnorgen.reference import alpha
from xnorgen.target import Target


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


def scales_and_bias(layer, w: np.ndarray) -> list[Const]:
    """What follows a conv/dense layer's weights: α per filter (binary weights with
    scale_weight; reference.alpha, the golden model's definition), then the bias."""
    out = []
    if layer.mode != "float" and layer.scale_weight:
        out.append(Const("alpha", "float", alpha(layer, w)))
    if layer.bias:
        out.append(Const("bias", "float", layer.params["bias"]))
    return out
