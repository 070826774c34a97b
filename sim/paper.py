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


def sweep_channels(channels=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), n_w: int = 9) -> list[dict]:
    """Figure 4(b): speedup against the number of input channels at N_W = 3^2."""
    return [{"c": c, "N_W": n_w, "speedup": speedup(c, n_w)} for c in channels]


def sweep_kernel(kernels=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), c: int = 256) -> list[dict]:
    """Figure 4(c): speedup against the filter size k (N_W = k^2) at c = 256."""
    return [{"c": c, "kernel": k, "N_W": k * k, "speedup": speedup(c, k * k)} for k in kernels]


def layer_model(lp) -> dict | None:
    """The paper's accounting for one conv/dense layer, or None for layers it does not count.

    Dense layers are 1x1 convolutions at one position (N_W = 1, N_I = 1, c = fan-in). Only xnor
    layers are binary; float and bwn layers cost c*N_W*N_I multiply-adds per filter at one per
    clock in both columns (the model has no cheaper rate for bwn's additions).
    """
    from xnorgen.kinds import geometry
    g, layer = geometry(lp), lp.layer
    if g is None:
        return None
    c, n_w, n_i, filters = g.channels, g.taps, g.pixels, g.filters
    binary = layer.mode == "xnor"
    f_clk = layer_clocks(c, n_w, n_i, filters, binary=False)
    b_clk = layer_clocks(c, n_w, n_i, filters, binary=binary)
    return {"layer": layer.name, "type": layer.type, "mode": layer.mode, "c": c, "N_W": n_w, "N_I": n_i,
            "filters": filters, "binary": binary, "float_clocks": f_clk, "binary_clocks": b_clk,
            "speedup": f_clk / b_clk}


def network_model(plan) -> dict:
    """Per-layer paper model and whole-network totals (float layers counted in both columns)."""
    layers = [m for m in (layer_model(lp) for lp in plan.layers) if m is not None]
    f_tot = sum(m["float_clocks"] for m in layers)
    b_tot = sum(m["binary_clocks"] for m in layers)
    binary_only = [m for m in layers if m["binary"]]
    fb = sum(m["float_clocks"] for m in binary_only)
    bb = sum(m["binary_clocks"] for m in binary_only)
    return {"report": "speedup", "network": plan.net.name, "binary_ops_per_clock": BINARY_OPS_PER_CLOCK,
            "layers": layers,
            "total": {"float_clocks": f_tot, "binary_clocks": b_tot, "speedup": f_tot / b_tot if b_tot else 1.0,
                      "binary_layers_speedup": fb / bb if bb else None}}
