"""Front end, last step: attach the .npz arrays to the layers that need them.

Needs: a Network with shapes (graph.build_graph).
Guarantees: each layer's params hold float64 arrays of exactly the shapes in
graph.expected_params, all finite and within float32's range (the C constants are
float32), batchnorm variances >= 0.
"""
from __future__ import annotations

import numpy as np

from xnorgen.errors import XnorgenError
from xnorgen.frontend.graph import Network, expected_params
from xnorgen.frontend.userfiles import NpzArrays

FLOAT32_MAX = float(np.finfo(np.float32).max)


def needs_weights(net: Network) -> bool:
    return any(expected_params(layer, net.shapes[layer.inputs[0]]) for layer in net.layers)


class ArrayDict:
    """Arrays already in memory (an imported model's) behind NpzArrays' reading interface."""

    def __init__(self, arrays: dict):
        self.arrays, self.names = arrays, set(arrays)

    def read(self, key, shape, where):
        a = np.asarray(self.arrays[key])
        if a.shape != tuple(shape) or a.dtype.kind not in "iuf":
            raise XnorgenError(where, f"array {key!r} has shape {list(a.shape)} ({a.dtype}), expected {list(shape)}")
        return a

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def attach_weights(net: Network, arrays: dict | None = None) -> None:
    """Load net.weights_path (or take `arrays`, {"<layer>.<param>": array}, an imported model's)
    and check every array against the layer that uses it: only the arrays the network uses are
    read, each after its .npy header (dtype, shape) is checked."""
    if not needs_weights(net):
        return
    where = str(net.path or net.name)
    if arrays is not None:
        npz, source = ArrayDict(arrays), where
    elif net.weights_path is None:
        raise XnorgenError(where, "layers need weights but the description names no 'weights:' file")
    else:
        source = net.weights_path
        try:
            npz = NpzArrays(net.weights_path).open()
        except XnorgenError as e:       # name the description that points at the file, too
            raise XnorgenError(f"{where}: weights {e.where}", e.what) from None
    with npz:
        for layer in net.layers:
            lwhere = f"{source}: layer {layer.name}"
            for pname, shape in expected_params(layer, net.shapes[layer.inputs[0]]).items():
                key = f"{layer.name}.{pname}"
                if key not in npz.names:
                    raise XnorgenError(lwhere, f"missing array {key!r} of shape {list(shape)}")
                layer.params[pname] = _checked(npz.read(key, shape, lwhere).astype(np.float64), key, lwhere)
            if layer.type == "batchnorm":     # the C reads gamma / sqrt(var + eps) as one float32
                scale = layer.params["gamma"] / np.sqrt(layer.params["var"] + layer.eps)
                if np.any(np.abs(scale) > FLOAT32_MAX):
                    raise XnorgenError(lwhere, "gamma / sqrt(var + eps) is beyond float32's range; "
                                               "is var 0 with a huge gamma?")


def _checked(a: np.ndarray, key: str, where: str) -> np.ndarray:
    """a, if every entry is finite and a float32 (and a variance is not negative)."""
    if not np.all(np.isfinite(a)):
        raise XnorgenError(where, f"array {key!r} has NaN or infinite entries")
    if np.any(np.abs(a) > FLOAT32_MAX):
        raise XnorgenError(where, f"array {key!r} has values beyond float32's range (+-{FLOAT32_MAX:.4g})")
    if key.endswith(".var") and np.any(a < 0):
        raise XnorgenError(where, f"array {key!r} has negative variances")
    return a


def random_weights(net: Network, rng, weight_scale: float = 1.0, negative_gamma: bool = False) -> dict:
    """Seeded random arrays for every parameter a shape-only description needs (benchmarks,
    examples, tests): normal weights/biases/means, variances in [0.5, 2], γ in ±[0.5, 1.5]."""
    arrays = {}
    for layer in net.layers:
        for pname, shape in expected_params(layer, net.shapes[layer.inputs[0]]).items():
            if pname == "var":
                a = rng.uniform(0.5, 2.0, shape)
            elif pname == "gamma":
                a = rng.uniform(0.5, 1.5, shape) * (rng.choice([-1.0, 1.0], shape) if negative_gamma else 1.0)
            else:
                a = rng.standard_normal(shape) * (weight_scale if pname == "weight" else 1.0)
            arrays[f"{layer.name}.{pname}"] = a.astype(np.float32)
    return arrays
