"""The importer's conv2d and dense layers: Conv / Gemm / MatMul with constant weights, their
mode from the weights and the input (onnx_import's docstring), and the Mul / Div / Add that fold
into them (per-channel scales, K, beta, the bias)."""
from __future__ import annotations

import numpy as np

from .onnx_ops import Val, folded, out_hw, spatial


def _binary_scale(w: np.ndarray):
    """Per output unit a_f if every weight of it is +-a_f (a_f > 0), else None."""
    a = np.abs(w.reshape(len(w), -1))
    if np.all(a > 0) and np.all(a == a[:, :1]):
        return a[:, 0]
    return None


def _weights_and_mode(imp, node, x, w, wbinary):
    """(input layer, effective weights, mode): xnor for a binarized input into binary weights;
    a binarized input into real weights goes through a `sign` layer first (float conv)."""
    if x.kind == "bin":
        w = w * x.scale
        if wbinary or _binary_scale(w) is not None:
            return x.layer, w, "xnor"
        sign = imp.add_layer(node, {"type": "sign", "inputs": [x.layer]}, x.shape, suffix="_sign")
        return sign.layer, w, "float"
    if x.kind != "layer":
        imp.fail(node, f"its input is an intermediate ({x.kind}), not a layer output")
    return x.layer, w, ("bwn" if wbinary or _binary_scale(w) is not None else "float")


def conv(imp, node, attrs):
    x = imp.get(node, 0)
    wv = imp.get(node, 1)
    if wv.kind != "const":
        imp.fail(node, "the weights must be constants")
    w = wv.const
    if w.ndim != 4:
        imp.fail(node, "only 2-D convolutions are supported")
    kernel = list(w.shape[2:])
    if list(attrs.get("kernel_shape", kernel)) != kernel:
        imp.fail(node, "kernel_shape disagrees with the weights")
    stride, pad = spatial(imp, node, attrs, kernel)
    pad_value = 0
    if x.kind == "bin" and x.pad:
        if any(pad):
            imp.fail(node, "a convolution that pads an already padded input")
        pad, pad_value = list(x.pad[:2]), x.pad[2]
    if x.kind == "absmean":          # the paper's K as a constant box filter over A
        if w.shape[:2] != (1, 1) or not np.allclose(w, 1.0 / (kernel[0] * kernel[1]), rtol=1e-6, atol=0) \
                or imp.get(node, 2, optional=True) is not None:
            imp.fail(node, "a convolution of mean|x| that is not a box filter (K)")
        return Val("kmap", layer=x.layer, box=(kernel, stride, pad))
    if attrs.get("group", 1) != 1:
        imp.fail(node, "grouped or depthwise convolutions are not supported")
    src = x
    if len(src.shape) != 3 or w.shape[1] != src.shape[0]:
        imp.fail(node, f"weights {list(w.shape)} do not fit the input {list(src.shape)}")
    b = imp.const(node, 2, optional=True)
    layer_in, w, mode = _weights_and_mode(imp, node, x, w, wv.binary)
    ho, wo = out_hw(imp, node, src.shape, kernel, stride, pad)
    spec = {"type": "conv2d", "inputs": [layer_in], "filters": int(w.shape[0]), "kernel": kernel,
            "stride": stride, "padding": pad, "mode": mode, "bias": b is not None}
    if mode == "xnor":
        spec["scale_input"] = False
        if pad_value:
            spec["pad_value"] = pad_value
    elif pad_value:
        imp.fail(node, "a +-1 padding into real-valued weights: the contract pads those with zeros")
    params = {"weight": w, **({"bias": b} if b is not None else {})}
    out = imp.add_layer(node, spec, (int(w.shape[0]), ho, wo), params)
    imp.pending[node.output[0]] = out.layer
    return out


def dense(imp, node, attrs):
    x = imp.get(node, 0)
    wv = imp.get(node, 1)
    if wv.kind != "const":
        imp.fail(node, "the weights must be constants")
    if node.op_type == "Gemm":
        if attrs.get("transA", 0):
            imp.fail(node, "transA is not supported")
        w = wv.const if attrs.get("transB", 0) else wv.const.T
        w = w * float(attrs.get("alpha", 1.0))
        b = imp.const(node, 2, optional=True)
        b = None if b is None else np.broadcast_to(b * float(attrs.get("beta", 1.0)), (w.shape[0],)).copy()
    else:
        w, b = wv.const.T, None
    src = x
    if w.ndim != 2 or len(src.shape) != 1 or w.shape[1] != src.shape[0]:
        imp.fail(node, f"weights {list(w.shape)} do not fit the input {list(src.shape)} (a vector)")
    layer_in, w, mode = _weights_and_mode(imp, node, x, w, wv.binary)
    spec = {"type": "dense", "inputs": [layer_in], "units": int(w.shape[0]), "mode": mode, "bias": b is not None}
    if mode == "xnor":
        spec["scale_input"] = False
    out = imp.add_layer(node, spec, (int(w.shape[0]),), {"weight": w, **({"bias": b} if b is not None else {})})
    imp.pending[node.output[0]] = out.layer
    return out


def _per_unit(imp, node, c, units, spatial):
    """A constant that broadcasts per output unit ([1, F, 1, 1], [F, 1, 1], [1, F], [F], scalar)."""
    c = np.asarray(c, dtype=np.float64)
    if c.size == 1:
        return np.full(units, float(c.reshape(-1)[0]))
    shapes = [(1, units, 1, 1), (units, 1, 1)] if spatial else [(1, units), (units,)]
    if c.shape not in shapes:
        imp.fail(node, f"a constant of shape {list(c.shape)} is not per output channel")
    return c.reshape(-1)


def _fold_target(imp, node):
    """(input index of the layer tensor, its pending layer spec) if node may fold into it."""
    for i in (0, 1):
        t = node.input[i]
        name = imp.pending.get(t)
        if name is not None and imp.uses.get(t, 0) == 1:
            spec = next(s for s in imp.layers if s["name"] == name)
            return i, spec
    return None, None


def mul(imp, node, attrs):
    if (v := folded(imp, node, attrs)) is not None:
        return v
    a, b = imp.get(node, 0), imp.get(node, 1)
    if {a.kind, b.kind} == {"bin", "const"}:            # sign(x) * s: a scaled sign
        bv, cv = (a, b) if a.kind == "bin" else (b, a)
        if cv.const.size == 1 and cv.const.reshape(-1)[0] != 0:
            return Val("bin", layer=bv.layer, shape=bv.shape, scale=bv.scale * float(cv.const.reshape(-1)[0]))
    i, spec = _fold_target(imp, node)
    if spec is None:
        imp.fail(node, "a product xnorgen cannot fold: only per-channel constants, K and beta after a conv/dense")
    return _fold_product(imp, node, i, spec, imp.get(node, 1 - i))


def div(imp, node, attrs):
    if (v := folded(imp, node, attrs)) is not None:
        return v
    c = imp.const(node, 1, what="a constant divisor")
    i, spec = _fold_target(imp, node)
    if spec is None or i != 0 or np.any(c == 0):
        imp.fail(node, "a quotient xnorgen cannot fold: only a conv/dense output by a non-zero per-channel constant")
    return _fold_product(imp, node, 0, spec, Val("const", const=1.0 / c))


def _fold_product(imp, node, i, spec, other):
    """Fold `other` (a per-channel constant, K or beta) into the pending layer `spec`."""
    name = spec["name"]
    units = spec.get("filters", spec.get("units"))
    if other.kind == "const":
        c = _per_unit(imp, node, other.const, units, spec["type"] == "conv2d")
        w = imp.arrays[f"{name}.weight"].astype(np.float64)
        imp.arrays[f"{name}.weight"] = (w * c.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
        if spec["bias"]:
            imp.arrays[f"{name}.bias"] = (imp.arrays[f"{name}.bias"] * c).astype(np.float32)
    elif other.kind in ("kmap", "beta") and spec["mode"] == "xnor" and not spec.get("scale_input", True):
        if spec["bias"]:
            imp.fail(node, "K or beta applied after the bias; the contract applies them before it")
        if other.layer != spec["inputs"][0]:
            imp.fail(node, "K or beta of a tensor other than the layer's input")
        if (other.kind == "kmap") != (spec["type"] == "conv2d"):
            imp.fail(node, "K belongs to a conv2d, beta to a dense layer")
        if other.kind == "kmap" and other.box != (spec["kernel"], spec["stride"], spec["padding"]):
            imp.fail(node, "K's box filter does not match the convolution's kernel, stride and padding")
        spec["scale_input"] = True
    else:
        imp.fail(node, f"a product with {other.kind}: xnorgen folds per-channel constants, K and beta only")
    imp.pending[node.output[0]] = name
    return Val("layer", layer=name, shape=imp.get(node, i).shape)


def add(imp, node, attrs):
    if (v := folded(imp, node, attrs)) is not None:
        return v
    a, b = imp.get(node, 0), imp.get(node, 1)
    if a.kind == "layer" and b.kind == "layer":
        if a.shape != b.shape:
            imp.fail(node, f"adds shapes {list(a.shape)} and {list(b.shape)}; xnorgen adds equal shapes only")
        return imp.add_layer(node, {"type": "add", "inputs": [a.layer, b.layer]}, a.shape)
    i, spec = _fold_target(imp, node)
    other = imp.get(node, 1 - i) if spec is not None else None
    if spec is None or other.kind != "const":
        imp.fail(node, "an addition xnorgen cannot express: two layer outputs, or a per-channel bias after conv/dense")
    name = spec["name"]
    c = _per_unit(imp, node, other.const, spec.get("filters", spec.get("units")), spec["type"] == "conv2d")
    old = imp.arrays.get(f"{name}.bias")
    imp.arrays[f"{name}.bias"] = (c if old is None else old.astype(np.float64) + c).astype(np.float32)
    spec["bias"] = True
    imp.pending[node.output[0]] = name
    return Val("layer", layer=name, shape=imp.get(node, i).shape)
