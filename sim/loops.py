"""Trip counts of the generated loop nests (templates/macros.c.j2 row_bounds/col_bounds).

For output index o along one axis the window starts at i0 = o*s - p and the
in-bounds taps are [k0, k1) with k0 = max(0, -i0), k1 = min(k, size - i0).
Both the functional simulator (as masks) and the counters (as sums) use these.
"""
from __future__ import annotations

import numpy as np


def window_bounds(size: int, k: int, s: int, p: int, out: int):
    """Arrays (i0, k0, k1) over the `out` output positions of one axis."""
    i0 = np.arange(out) * s - p
    k0 = np.maximum(0, -i0)
    k1 = np.minimum(k, size - i0)
    return i0, k0, np.maximum(k1, k0)


def valid_taps(size: int, k: int, s: int, p: int, out: int) -> int:
    """Total in-bounds taps over all output positions of one axis."""
    _, k0, k1 = window_bounds(size, k, s, p, out)
    return int((k1 - k0).sum())


def tap_mask(size: int, k: int, s: int, p: int, out: int):
    """(index [out, k], inside [out, k]): input index of each tap and whether it is in bounds."""
    i0, k0, k1 = window_bounds(size, k, s, p, out)
    taps = np.arange(k)
    inside = (taps[None] >= k0[:, None]) & (taps[None] < k1[:, None])
    return i0[:, None] + taps[None], inside


def conv_taps(in_hw, kernel, stride, padding, out_hw, pad_value) -> int:
    """Taps the kernel visits over all outputs: in-bounds only with pad_value 0, else all."""
    (h, w), (kh, kw), (sh, sw), (ph, pw), (ho, wo) = in_hw, kernel, stride, padding, out_hw
    if pad_value == 0:
        return valid_taps(h, kh, sh, ph, ho) * valid_taps(w, kw, sw, pw, wo)
    return ho * wo * kh * kw
