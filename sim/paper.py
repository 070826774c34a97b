"""The paper's speedup model (XNOR-Net, section 3.3 / Figure 4).

A binary convolution with c input channels, a kernel of N_W = kh*kw taps and
N_I output positions needs c*N_W*N_I binary operations per filter and N_I
non-binary ones (the multiplication by alpha*K). With 64 binary operations per
clock and one non-binary operation per clock, against c*N_W*N_I multiply-adds
at one per clock for the float convolution:

    S = c*N_W*N_I / (c*N_W*N_I/64 + N_I) = 64*c*N_W / (c*N_W + 64)

N_I cancels. c=256, N_W=3^2 gives 62.27.
"""
from __future__ import annotations

BINARY_OPS_PER_CLOCK = 64


def speedup(c: int, n_w: int) -> float:
    """S = 64*c*N_W / (c*N_W + 64)."""
    return BINARY_OPS_PER_CLOCK * c * n_w / (c * n_w + BINARY_OPS_PER_CLOCK)


def layer_clocks(c: int, n_w: int, n_i: int, filters: int = 1, binary: bool = True) -> float:
    """Clocks of one conv layer in the paper's model (float: one MAC per clock)."""
    ops = c * n_w * n_i * filters
    if not binary:
        return float(ops)
    return ops / BINARY_OPS_PER_CLOCK + n_i * filters
