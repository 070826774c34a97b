"""Test helper: write net.yaml + .npz pairs, and draw random networks that hit the hard cases."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

import xnorgen
from xnorgen.frontend.weights import random_weights
from xnorgen.frontend.description import Description, _parse_layer, read_description
from xnorgen.frontend.graph import build_graph


def write_net(directory, name, input_shape, layers, rng=None, params=None, output=None):
    """Write <name>.yaml and <name>.npz with random weights for every array a layer needs.

    params overrides chosen arrays ({"layer.param": array}). Returns the yaml path.
    """
    rng = rng or np.random.default_rng(0)
    directory = Path(directory)
    doc = {"name": name, "input": {"shape": list(input_shape)}, "weights": f"{name}.npz", "layers": layers}
    if output:
        doc["output"] = output
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    net = build_graph(read_description(path))
    arrays = random_weights(net, rng, negative_gamma=True)
    arrays.update(params or {})
    np.savez(directory / f"{name}.npz", **arrays)
    return path


def with_zeros(shape, rng):
    """Random float32 values with about 10% exact +0.0 / -0.0 entries (sign(0) = +1 must hold)."""
    x = rng.standard_normal(shape).astype(np.float32)
    mask = rng.random(shape) < 0.1
    x[mask] = rng.choice(np.array([0.0, -0.0], dtype=np.float32), size=int(mask.sum()))
    return x


# (C, H, W, filters, kernel, stride, padding, pad_value) for every target's binary kernels: word
# tails of every vector width (C = 1, 63, 65, 200 -> 1..4 words per pixel; 520 -> 9 words: one
# 8-word zmm step + a 1-word tail, odd word counts for NEON's one-word tail), filter counts off the
# register block, borders, strides, kernels wider than the input.
TARGET_CONV_CASES = [
    (1, 5, 5, 3, 3, 1, 1, 0),
    (63, 6, 7, 5, 3, 1, 1, 0),
    (65, 7, 5, 9, 3, 1, "same", -1),
    (200, 5, 6, 7, 3, 2, 0, 1),
    (520, 4, 4, 11, 3, 1, 1, 0),
    (130, 4, 4, 3, [2, 3], [1, 2], [0, 1], 0),
    (64, 2, 3, 17, 5, 1, 2, 1),
    (33, 3, 2, 4, [3, 5], 1, [1, 2], -1),
]


def xnor_conv_net(directory, c, h, w, f, kernel, stride, padding, pad_value, seed, scaled=False):
    """One xnor conv2d; with scaled=False (no alpha, K or bias) its output is the integer core.
    Weights include exact zeros, so sign(0) = +1 is exercised for weights too."""
    layer = {"name": "conv", "type": "conv2d", "mode": "xnor", "filters": f, "kernel": kernel,
             "stride": stride, "padding": padding, "pad_value": pad_value, "bias": scaled,
             "scale_weight": scaled, "scale_input": scaled}
    rng = np.random.default_rng(seed)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    path = write_net(directory, f"x{seed}", (c, h, w), [layer], rng, params={"conv.weight": with_zeros((f, c, kh, kw), rng)})
    return xnorgen.load(path)


def random_input(net, rng, batch=None):
    shape = tuple(net.input_shape) if batch is None else (batch, *net.input_shape)
    return rng.standard_normal(shape).astype(np.float32)


def random_network(directory, name, rng, output=None):
    """A random whole network: float stem, xnor/bwn blocks (BN -> conv -> pool), residual add, dense head."""
    c = int(rng.choice([1, 3, 7, 65]))
    h, w = int(rng.integers(5, 12)), int(rng.integers(5, 12))
    f1 = int(rng.choice([16, 63, 64, 65]))
    mode = str(rng.choice(["xnor", "bwn"]))
    pad_value = int(rng.choice([0, 1, -1]))
    layers = [
        {"name": "stem", "type": "conv2d", "filters": f1, "kernel": 3, "padding": 1, "bias": True},
        {"name": "bn1", "type": "batchnorm"},
        {"name": "b1", "type": "conv2d", "mode": mode, "filters": f1, "kernel": [3, 1], "padding": "same",
         "pad_value": pad_value, "bias": bool(rng.integers(2))},
        {"name": "res", "type": "add", "inputs": ["b1", "bn1"]},
        {"name": "act", "type": "relu"},
        {"name": "bn2", "type": "batchnorm"},
        {"name": "b2", "type": "conv2d", "mode": "xnor", "filters": int(rng.choice([8, 33])), "kernel": [3, 2],
         "stride": int(rng.choice([1, 2])), "padding": int(rng.choice([0, 1]))},
        {"name": "pool", "type": str(rng.choice(["maxpool", "avgpool"])), "kernel": 2, "stride": 1},
        {"name": "flat", "type": "flatten"},
        {"name": "fc1", "type": "dense", "mode": str(rng.choice(["xnor", "bwn"])), "units": 40},
        {"name": "fc", "type": "dense", "units": 10, "bias": True},
        {"name": "prob", "type": "softmax"},
    ]
    return write_net(directory, name, (c, h, w), layers, rng, output=output)


def load(path):
    return xnorgen.load(path)


def random_dag_layers(rng, shape):
    """3-8 random layers grown from whatever is valid for the current tensor (tests/test_random_dags.py
    says what they cover); each step is validated by the real front end."""
    layers, shapes, cur, cur_shape = [], {"input": shape}, "input", shape
    for i in range(int(rng.integers(3, 9))):
        name = f"l{i}"
        if len(cur_shape) == 3:
            c, h, w = cur_shape
            kind = rng.choice(["conv", "conv", "conv", "bn", "act", "pool", "add", "flat"])
            if kind == "conv":
                k = [int(rng.integers(1, min(h, 3) + 2)), int(rng.integers(1, min(w, 3) + 2))]
                pad = [int(rng.integers(0, k[0])), int(rng.integers(0, k[1]))]
                layer = {"type": "conv2d", "mode": str(rng.choice(["float", "bwn", "xnor", "xnor"])),
                         "filters": int(rng.choice([1, 5, 16, 63, 65])), "kernel": k, "padding": pad,
                         "stride": int(rng.integers(1, 3)), "pad_value": int(rng.choice([0, 0, 1, -1])),
                         "bias": bool(rng.integers(2)), "scale_input": bool(rng.integers(3) > 0)}
                if h + 2 * pad[0] < k[0] or w + 2 * pad[1] < k[1]:
                    continue
            elif kind == "bn":
                layer = {"type": "batchnorm"}
            elif kind == "act":
                layer = {"type": str(rng.choice(["relu", "sign"]))}
            elif kind == "pool":
                glob = bool(rng.integers(4) == 0)
                layer = {"type": str(rng.choice(["maxpool", "avgpool"]))}
                if glob:
                    layer["global"] = True
                else:
                    kk = int(rng.integers(1, min(h, w, 3) + 1))
                    layer.update(kernel=kk, stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, kk)))
            elif kind == "add":
                same = [t for t, s in shapes.items() if s == cur_shape]
                layer = {"type": "add", "inputs": [cur, str(rng.choice(same))]}
            else:
                layer = {"type": "flatten"}
        else:
            kind = rng.choice(["dense", "dense", "bn", "act", "add"])
            if kind == "dense":
                layer = {"type": "dense", "mode": str(rng.choice(["float", "bwn", "xnor"])),
                         "units": int(rng.choice([1, 10, 64, 65])), "bias": bool(rng.integers(2))}
            elif kind == "bn":
                layer = {"type": "batchnorm"}
            elif kind == "act":
                layer = {"type": str(rng.choice(["relu", "sign"]))}
            else:
                same = [t for t, s in shapes.items() if s == cur_shape]
                layer = {"type": "add", "inputs": [cur, str(rng.choice(same))]}
        layer = {"name": name, **layer}
        layer.setdefault("inputs", [cur])
        layers.append(layer)
        net = build_graph(Description("probe", tuple(shape), [_parse_layer(j, dict(s), "input", "probe")
                                                             for j, s in enumerate(layers)], name, None, None))
        cur, cur_shape = name, net.shapes[name]
        shapes[name] = cur_shape
    return layers
