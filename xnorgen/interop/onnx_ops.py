"""One handler per ONNX operator the importer reads: handler(importer, node, attrs) -> Val.

Each either folds constants, starts or finishes a binarization pattern (onnx_import's
docstring), adds a layer, folds a per-channel Mul / Add into the layer before it, or refuses
with one line saying why.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Val:
    """What one ONNX tensor is to the importer (onnx_import's docstring)."""
    kind: str                       # const | layer | bin | abs | absmean | kmap | beta | ge0
    const: np.ndarray | None = None
    layer: str | None = None        # the producing layer ("input" for the graph input)
    shape: tuple = ()               # without the batch dimension (layer values)
    scale: float = 1.0              # bin: the activation's scale
    binary: bool = False            # const: the sign of something (+-s per filter)
    box: tuple | None = None        # kmap: (kernel, stride, padding)
    pad: tuple | None = None        # bin: (ph, pw, value) of a Pad of the signs with +-1

#: Operators computed when all their inputs are constants.
FOLD = {
    "Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Mul": lambda a, b: a * b, "Div": lambda a, b: a / b,
    "Neg": lambda a: -a, "Abs": np.abs, "Sqrt": np.sqrt, "Reciprocal": lambda a: 1.0 / a,
    "GreaterOrEqual": lambda a, b: (a >= b).astype(np.float64), "Greater": lambda a, b: (a > b).astype(np.float64),
    "Less": lambda a, b: (a < b).astype(np.float64), "Equal": lambda a, b: (a == b).astype(np.float64),
    "Where": lambda c, a, b: np.where(c != 0, a, b),
}


def folded(imp, node, attrs):
    """node's value if every input is a constant, else None."""
    ins = [imp.get(node, i) for i in range(len(node.input)) if node.input[i]]
    if not ins or any(v.kind != "const" for v in ins):
        return None
    a = [v.const for v in ins]
    op = node.op_type
    if op in FOLD:
        out = FOLD[op](*a)
    elif op == "Reshape":
        shape = [int(d) for d in a[1]]
        shape = [a[0].shape[i] if d == 0 and not attrs.get("allowzero") else d for i, d in enumerate(shape)]
        out = a[0].reshape(shape)
    elif op == "Transpose":
        out = np.transpose(a[0], attrs.get("perm"))
    elif op == "Unsqueeze":
        axes = attrs.get("axes", a[1].astype(int).tolist() if len(a) > 1 else [])
        out = np.expand_dims(a[0], tuple(int(x) for x in axes))
    elif op == "Squeeze":
        axes = attrs.get("axes", a[1].astype(int).tolist() if len(a) > 1 else None)
        out = np.squeeze(a[0], None if axes is None else tuple(int(x) for x in axes))
    elif op == "Gather":
        out = np.take(a[0], a[1].astype(np.int64), axis=int(attrs.get("axis", 0)))
    elif op == "Slice":
        axes = a[3].astype(int).tolist() if len(a) > 3 else list(range(len(a[1])))
        steps = a[4].astype(int).tolist() if len(a) > 4 else [1] * len(axes)
        idx = [slice(None)] * a[0].ndim
        for ax, b, e, st in zip(axes, a[1].astype(np.int64).tolist(), a[2].astype(np.int64).tolist(), steps):
            idx[ax] = slice(b, e, st)
        out = a[0][tuple(idx)]
    elif op == "Concat":
        out = np.concatenate(a, axis=int(attrs.get("axis", 0)))
    elif op == "ReduceMean":
        axes = attrs.get("axes", a[1].astype(int).tolist() if len(a) > 1 else None)
        out = a[0].mean(axis=None if axes is None else tuple(int(x) for x in axes), keepdims=bool(attrs.get("keepdims", 1)))
    elif op in ("Cast", "Identity", "Dropout"):
        out = a[0]
    elif op == "Sign":
        return Val("const", const=np.sign(a[0]), binary=True)
    else:
        imp.fail(node, "this operator on constants is not supported")
    if out.size > 1 << 28:
        imp.fail(node, "a folded constant is too large")
    return Val("const", const=np.asarray(out, dtype=np.float64))


def _constant(imp, node, attrs):
    for k in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if k in attrs:
            return Val("const", const=np.asarray(attrs[k], dtype=np.float64))
    imp.fail(node, "a Constant without a numeric value")


def _alias(imp, node, attrs):
    if (v := folded(imp, node, attrs)) is not None:
        return v
    if node.op_type == "Dropout" and len(node.input) > 2 and node.input[2]:
        t = imp.const(node, 2, what="training_mode as a constant")
        if np.any(t):
            imp.fail(node, "Dropout in training mode")
    if node.op_type == "Cast" and attrs.get("to") not in (1, 11):        # FLOAT, DOUBLE
        imp.fail(node, "a cast of an activation to a non-float type")
    return imp.get(node, 0)


# ---------------------------------------------------------------- binarization patterns

def bipolar_quant(imp, node, attrs):
    """QONNX BipolarQuant(x, s) = s where x >= 0 else -s."""
    s = imp.const(node, 1, what="the scale")
    x = imp.get(node, 0)
    if x.kind == "const":
        q = np.where(x.const >= 0, 1.0, -1.0) * s
        return Val("const", const=q, binary=True)
    if x.kind not in ("layer", "clip"):
        imp.fail(node, "BipolarQuant of an intermediate pattern")
    if s.size != 1 or s.reshape(-1)[0] == 0:
        imp.fail(node, "an activation's BipolarQuant needs one non-zero scale (per-channel scales are not supported)")
    return Val("bin", layer=x.layer, shape=x.shape, scale=float(s.reshape(-1)[0]))


def _signable(imp, node) -> Val:
    """Input 0 as something a sign may be taken of: a layer output, or a Clip of one."""
    x = imp.get(node, 0)
    if x.kind not in ("layer", "clip"):
        imp.activation(node)                            # the usual message
    return x


def _clip(imp, node, attrs):
    """Clip(x, lo, hi) with lo < 0 < hi (PyTorch's Hardtanh before a sign, as BNN code often
    has it): sign(clip(x)) = sign(x), sign(0) = +1 included, so it is read only right before a
    sign; anything else using it is refused (K of clipped values is not the contract's K)."""
    if (v := folded(imp, node, attrs)) is not None:
        return v
    x = imp.activation(node)
    lo, hi = imp.const(node, 1, optional=True), imp.const(node, 2, optional=True)
    lo = attrs.get("min", -np.inf) if lo is None else float(lo.reshape(-1)[0])
    hi = attrs.get("max", np.inf) if hi is None else float(hi.reshape(-1)[0])
    if not lo < 0 < hi:
        imp.fail(node, f"Clip to [{lo}, {hi}]: only a clip around 0 right before a sign is supported")
    return Val("clip", layer=x.layer, shape=x.shape)


def _sign(imp, node, attrs):
    if (v := folded(imp, node, attrs)) is not None:
        if np.any(v.const == 0):
            imp.warn("sign0w", "a weight is exactly 0: ONNX Sign(0) = 0, the contract's sign(0) = +1")
        return v
    x = _signable(imp, node)
    imp.warn("sign0", "ONNX Sign(0) = 0 but xnorgen's sign(0) = +1: outputs differ where an input is exactly 0")
    return Val("bin", layer=x.layer, shape=x.shape)


def _compare(imp, node, attrs):
    if (v := folded(imp, node, attrs)) is not None:
        return v
    x, zero = _signable(imp, node), imp.const(node, 1)
    if node.op_type != "GreaterOrEqual" or zero.size != 1 or zero.reshape(-1)[0] != 0:
        imp.fail(node, "only x >= 0 (a sign) is supported on activations")
    return Val("ge0", layer=x.layer, shape=x.shape)


def _where(imp, node, attrs):
    if (v := folded(imp, node, attrs)) is not None:
        return v
    c, a, b = imp.get(node, 0), imp.const(node, 1), imp.const(node, 2)
    uniform = a.size and b.size and np.all(a == a.flat[0]) and np.all(b == b.flat[0])   # ones_like(x) too
    if c.kind != "ge0" or not uniform or a.flat[0] != -b.flat[0] or a.flat[0] == 0 or a.ndim > len(c.shape) + 1:
        imp.fail(node, "only Where(x >= 0, s, -s) (a sign) is supported on activations")
    return Val("bin", layer=c.layer, shape=c.shape, scale=float(a.flat[0]))


def _pad(imp, node, attrs):
    """Pad of a sign pattern with +-1 (the contract's pad_value), spatial and symmetric."""
    if (v := folded(imp, node, attrs)) is not None:
        return v
    x = imp.get(node, 0)
    pads = imp.const(node, 1, what="constant pads").astype(int).tolist()
    value = imp.const(node, 2, optional=True)
    value = 0.0 if value is None else float(value.reshape(-1)[0])
    if x.kind != "bin" or x.pad or attrs.get("mode", "constant") != "constant" or len(pads) != 8:
        imp.fail(node, "only a constant Pad of binarized [1, C, H, W] activations is supported (pad_value)")
    if pads[:2] != [0, 0] or pads[4:6] != [0, 0] or pads[2:4] != pads[6:8] or value / x.scale not in (1.0, -1.0):
        imp.fail(node, f"pads {pads} with {value}: the contract pads H and W alike with +1 or -1 (pad_value)")
    return Val("bin", layer=x.layer, shape=x.shape, scale=x.scale, pad=(pads[2], pads[3], int(value / x.scale)))


def _shape(imp, node, attrs):
    """Shapes are static here: Shape of a layer output is the constant [1, *shape] (PyTorch's
    x.view(x.size(0), -1) exports Shape -> Gather -> Unsqueeze -> Concat -> Reshape)."""
    x = imp.get(node, 0)
    if x.kind == "const":
        shape = list(x.const.shape)
    elif x.kind == "layer":
        shape = [1, *x.shape]
    else:
        imp.fail(node, f"Shape of an intermediate ({x.kind})")
    start, end = attrs.get("start", 0), attrs.get("end", None)
    return Val("const", const=np.asarray(shape[start:end], dtype=np.int64))


def _abs(imp, node, attrs):
    if (v := folded(imp, node, attrs)) is not None:
        return v
    x = imp.activation(node)
    return Val("abs", layer=x.layer, shape=x.shape)


def _reduce_mean(imp, node, attrs):
    if (v := folded(imp, node, attrs)) is not None:
        return v
    x = imp.get(node, 0)
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = imp.const(node, 1).astype(int).tolist()
    rank = len(x.shape) + 1
    axes = sorted(int(a) % rank for a in (axes if axes is not None else range(rank)))
    if x.kind == "abs" and len(x.shape) == 3 and axes == [1] and attrs.get("keepdims", 1):
        return Val("absmean", layer=x.layer, shape=(1, *x.shape[1:]))
    if x.kind == "abs" and axes in (list(range(1, rank)), list(range(rank))):
        return Val("beta", layer=x.layer)
    imp.fail(node, "only mean|x| over the channels (the paper's A) or over a whole vector (dense's beta) is supported")


# ---------------------------------------------------------------- geometry

def spatial(imp, node, attrs, kernel):
    """(stride, padding) of a Conv or pool node, padding symmetric as the contract's."""
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        imp.fail(node, "dilations are not supported")
    stride = list(attrs.get("strides", [1, 1]))
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    auto = attrs.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        if stride != [1, 1] or any(k % 2 == 0 for k in kernel):
            imp.fail(node, f"auto_pad {auto} with an even kernel or a stride pads asymmetrically; the contract cannot")
        pads = [(kernel[0] - 1) // 2, (kernel[1] - 1) // 2] * 2
    elif auto == "VALID":
        pads = [0, 0, 0, 0]
    if len(stride) != 2 or len(pads) != 4:
        imp.fail(node, "only 2-D operators on [1, C, H, W] are supported")
    if pads[0] != pads[2] or pads[1] != pads[3]:
        imp.fail(node, f"asymmetric padding {pads}: the contract pads both sides alike")
    return stride, pads[:2]


def out_hw(imp, node, shape, kernel, stride, pad):
    ho = (shape[1] + 2 * pad[0] - kernel[0]) // stride[0] + 1
    wo = (shape[2] + 2 * pad[1] - kernel[1]) // stride[1] + 1
    if ho < 1 or wo < 1:
        imp.fail(node, "the window does not fit the input")
    return ho, wo


# ---------------------------------------------------------------- other layers

def _batchnorm(imp, node, attrs):
    x = imp.activation(node)
    if attrs.get("training_mode", 0):
        imp.fail(node, "BatchNormalization in training mode")
    g, b, m, v = (imp.const(node, i) for i in (1, 2, 3, 4))
    c = x.shape[0]
    if any(a.shape != (c,) for a in (g, b, m, v)):
        imp.fail(node, f"its parameters are not [{c}]")
    eps = float(str(np.float32(attrs.get("epsilon", 1e-5))))   # the float32 attribute's shortest decimal
    return imp.add_layer(node, {"type": "batchnorm", "inputs": [x.layer], "eps": eps}, x.shape, {"gamma": g, "beta": b, "mean": m, "var": v})


def _elementwise(imp, node, attrs):
    x = imp.activation(node)
    spec = {"type": {"Relu": "relu", "LeakyRelu": "leaky_relu"}[node.op_type], "inputs": [x.layer]}
    if node.op_type == "LeakyRelu":
        slope = float(attrs.get("alpha", 0.01))
        if not 0 <= slope <= 1:
            imp.fail(node, f"alpha {slope} outside [0, 1]")
        spec["slope"] = slope
    return imp.add_layer(node, spec, x.shape)


def _pool(imp, node, attrs):
    x = imp.get(node, 0)
    if node.op_type == "AveragePool" and x.kind == "absmean":
        kernel = list(attrs["kernel_shape"])
        stride, pad = spatial(imp, node, attrs, kernel)
        if any(pad) and not attrs.get("count_include_pad", 0):
            imp.fail(node, "K divides by the kernel area: count_include_pad must be 1")
        return Val("kmap", layer=x.layer, box=(kernel, stride, pad))
    x = imp.activation(node)
    if len(x.shape) != 3:
        imp.fail(node, "pools take [1, C, H, W]")
    kind = "maxpool" if "Max" in node.op_type else "avgpool"
    if node.op_type.startswith("Global"):
        return imp.add_layer(node, {"type": kind, "inputs": [x.layer], "global": True}, (x.shape[0], 1, 1))
    kernel = list(attrs.get("kernel_shape", []))
    if len(kernel) != 2:
        imp.fail(node, "only 2-D pools are supported")
    if attrs.get("ceil_mode", 0):
        imp.fail(node, "ceil_mode is not supported (the contract floors)")
    stride, pad = spatial(imp, node, attrs, kernel)
    if kind == "avgpool" and any(pad) and not attrs.get("count_include_pad", 0):
        imp.fail(node, "count_include_pad 0 with padding: the contract's average divides by the kernel area")
    ho, wo = out_hw(imp, node, x.shape, kernel, stride, pad)
    return imp.add_layer(node, {"type": kind, "inputs": [x.layer], "kernel": kernel, "stride": stride, "padding": pad},
                         (x.shape[0], ho, wo))


def _flatten(imp, node, attrs):
    if (v := folded(imp, node, attrs)) is not None:
        return v
    x = imp.activation(node)
    if node.op_type == "Flatten":
        if attrs.get("axis", 1) != 1:
            imp.fail(node, "Flatten with an axis other than 1")
    else:
        shape = [int(d) for d in imp.const(node, 1, what="a constant shape")]
        n = int(np.prod(x.shape))
        if shape not in ([1, -1], [1, n], [-1, n], [0, -1], [0, n], [n], [-1]):
            imp.fail(node, f"a reshape to {shape[:6]}; xnorgen reshapes only to a vector (flatten)")
    if len(x.shape) == 1:
        return x
    return imp.add_layer(node, {"type": "flatten", "inputs": [x.layer]}, (int(np.prod(x.shape)),))


def _softmax(imp, node, attrs):
    x = imp.activation(node)
    if len(x.shape) != 1:
        imp.fail(node, "Softmax over a [C, H, W] tensor: ONNX takes it per axis, the contract over the whole; "
                       "flatten first")
    return imp.add_layer(node, {"type": "softmax", "inputs": [x.layer]}, x.shape)


#: op_type -> handler of the default domain; onnx_import adds onnx_linear's (conv, dense, folds).
HANDLERS = {
    "Constant": _constant, "Identity": _alias, "Dropout": _alias, "Cast": _alias,
    "Sign": _sign, "GreaterOrEqual": _compare, "Greater": _compare, "Where": _where,
    "Abs": _abs, "ReduceMean": _reduce_mean, "Pad": _pad, "Shape": _shape, "Clip": _clip,
    "BatchNormalization": _batchnorm, "Relu": _elementwise, "LeakyRelu": _elementwise,
    "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _pool, "GlobalMaxPool": _pool,
    "Flatten": _flatten, "Reshape": _flatten, "Softmax": _softmax,
    **{op: lambda imp, node, attrs: folded(imp, node, attrs) or imp.fail(node, "supported on constants only")
       for op in ("Sub", "Neg", "Sqrt", "Reciprocal", "Transpose", "Unsqueeze", "Squeeze", "Concat", "Less", "Equal",
                  "Gather", "Slice")},
}
