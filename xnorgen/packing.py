"""Bit-packing of ±1 tensors into words: the one definition every stage uses.

Encoding: bit = 1 means -1 (the float's sign), bit = 0 means +1 (so sign(0) = +1).
Bit b of word j along the packed axis holds element j*word_bits + b. Tail bits
past the axis length are 0 in weights and activations alike, so XOR leaves
them 0 and popcount(a ^ w) counts only real mismatches: dot = n - 2*popcount.
"""
from __future__ import annotations

import numpy as np


def words_for(n: int, word_bits: int) -> int:
    return -(-n // word_bits)


def pack_signs(x, word_bits: int) -> np.ndarray:
    """Pack the last axis of x by sign (bit 1 where x < 0) into uint words: [..., n] -> [..., words]."""
    x = np.asarray(x)
    n = x.shape[-1]
    nw = words_for(n, word_bits)
    bits = np.zeros(x.shape[:-1] + (nw * word_bits,), dtype=np.uint64)
    bits[..., :n] = ~(x >= 0)
    bits = bits.reshape(x.shape[:-1] + (nw, word_bits))
    weights = np.left_shift(np.uint64(1), np.arange(word_bits, dtype=np.uint64))
    return (bits * weights).sum(axis=-1, dtype=np.uint64)


def pad_word_pattern(n: int, pad_value: int, word_bits: int) -> np.ndarray:
    """The packed words of a padded pixel: +1 -> all 0; -1 -> 1 on the n real bits only."""
    return pack_signs(np.full(n, float(pad_value)), word_bits)


def popcount(words) -> np.ndarray:
    """Per-element popcount of a uint64 array."""
    w = np.asarray(words, dtype=np.uint64)
    return np.unpackbits(w.view(np.uint8).reshape(w.shape + (8,)), axis=-1).sum(axis=-1)
