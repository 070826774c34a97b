"""Random network topologies built from every layer type, generated C vs the golden model.

Each network is grown layer by layer from whatever is valid for the current tensor (conv modes,
pad values, strides, pools, batchnorm, sign/relu, residual adds to any earlier tensor of the
same shape, flatten then dense), so layers see the shapes and fan-outs the hand-written cases
do not: tensors read by several layers, adds of a tensor with itself, flatten or an add as the
output, global pools, dense on [C, H, W].
"""
import numpy as np
import pytest

import xnorgen
from netgen import write_net


def _grow(rng, shape):
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
        net = xnorgen.graph.build_graph(xnorgen.description.Description(
            "probe", tuple(shape), [xnorgen.description._parse_layer(j, dict(s), "input", "probe")
                                    for j, s in enumerate(layers)], name, None, None))
        cur, cur_shape = name, net.shapes[name]
        shapes[name] = cur_shape
    return layers


@pytest.mark.parametrize("seed", range(12))
def test_random_dag_matches_reference(tmp_path, seed):
    import xnorgen.description  # noqa: F401  (used by _grow)
    import xnorgen.graph        # noqa: F401
    rng = np.random.default_rng(seed + 1000)
    shape = (int(rng.choice([1, 3, 64, 65])), int(rng.integers(2, 9)), int(rng.integers(2, 9)))
    layers = _grow(rng, shape)
    net = xnorgen.load(write_net(tmp_path, f"dag{seed}", shape, layers, rng))
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    got, want = xnorgen.build(net)(x), xnorgen.reference(net, x)
    assert got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max()))
    assert np.abs(got - want).max() <= 1e-4 * scale, [ly["type"] + ":" + ly.get("mode", "") for ly in layers]
    assert np.array_equal(got, xnorgen.build(net, fuse=False)(x))
