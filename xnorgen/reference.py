"""The golden model: contract section 2 in float64 numpy.

This file is the living definition of the semantics. Generated C and the
simulator are held to it (integer XNOR-popcount results exactly). It is written
for clarity, not speed: whole-tensor numpy, one function per layer kind.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from xnorgen.frontend.description import BatchNorm, Conv2d, Dense, Layer, Pool
from xnorgen.errors import XnorgenError
from xnorgen.frontend.graph import Network


def sign(x):
    """+1 where x >= 0 (so sign(0) = +1), else -1."""
    return np.where(np.asarray(x) >= 0, 1.0, -1.0)


def _windows(x, kernel, stride, padding, pad_value):
    """[C,H,W] -> [C,Ho,Wo,kh,kw] views of the padded input."""
    (ph, pw), (sh, sw) = padding, stride
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    return sliding_window_view(xp, tuple(kernel), axis=(1, 2))[:, ::sh, ::sw]


def conv2d(x, w, stride, padding, pad_value=0.0):
    """Plain cross-correlation of x [C,H,W] with w [F,C,kh,kw] -> [F,Ho,Wo]."""
    win = _windows(x, w.shape[2:], stride, padding, pad_value)
    return np.tensordot(w, win, axes=([1, 2, 3], [0, 3, 4]))


def alpha(layer, w):
    """Per-filter/unit weight scale: mean |W_f| over everything but the first axis."""
    if not layer.scale_weight:
        return np.ones(w.shape[0])
    return np.abs(w).reshape(w.shape[0], -1).mean(axis=1)


def binary_conv_core(layer: Conv2d, x):
    """The integer core conv(sign(I), sign(W)) of an xnor conv2d, exact in float64."""
    return conv2d(sign(x), sign(layer.params["weight"]), layer.stride, layer.padding, layer.pad_value)


def input_scale_map(layer: Conv2d, x):
    """K = conv2d(A, box(kh,kw)/(kh*kw)) with A = mean_c |I| zero-padded (1 if scale_input is off)."""
    kh, kw = layer.kernel
    a = np.abs(x).mean(axis=0)[None]
    box = np.full((1, 1, kh, kw), 1.0 / (kh * kw))
    k = conv2d(a, box, layer.stride, layer.padding, 0.0)[0]
    return k if layer.scale_input else np.ones_like(k)


def _conv_layer(layer: Conv2d, x):
    w = layer.params["weight"]
    if layer.mode == "float":
        out = conv2d(x, w, layer.stride, layer.padding, layer.pad_value)
    elif layer.mode == "bwn":
        out = conv2d(x, sign(w), layer.stride, layer.padding, layer.pad_value)
        out = out * alpha(layer, w)[:, None, None]
    else:
        out = binary_conv_core(layer, x) * alpha(layer, w)[:, None, None] * input_scale_map(layer, x)[None]
    if layer.bias:
        out = out + layer.params["bias"][:, None, None]
    return out


def _dense_layer(layer: Dense, x):
    x, w = x.reshape(-1), layer.params["weight"]
    if layer.mode == "float":
        out = w @ x
    elif layer.mode == "bwn":
        out = (sign(w) @ x) * alpha(layer, w)
    else:
        beta = np.abs(x).mean() if layer.scale_input else 1.0
        out = (sign(w) @ sign(x)) * alpha(layer, w) * beta
    return out + layer.params["bias"] if layer.bias else out


def _batchnorm(layer: BatchNorm, x):
    p = layer.params
    scale = p["gamma"] / np.sqrt(p["var"] + layer.eps)
    shape = (-1,) + (1,) * (x.ndim - 1)
    return (x - p["mean"].reshape(shape)) * scale.reshape(shape) + p["beta"].reshape(shape)


def _pool(layer: Pool, x):
    pad = -np.inf if layer.type == "maxpool" else 0.0
    win = _windows(x, layer.kernel, layer.stride, layer.padding, pad)
    if layer.type == "maxpool":
        return win.max(axis=(3, 4))
    return win.sum(axis=(3, 4)) / (layer.kernel[0] * layer.kernel[1])


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


#: The golden model of each layer type: (layer, float64 inputs of one sample) -> output.
EVAL = {
    "conv2d": lambda layer, ins: _conv_layer(layer, ins[0]),
    "dense": lambda layer, ins: _dense_layer(layer, ins[0]),
    "batchnorm": lambda layer, ins: _batchnorm(layer, ins[0]),
    "maxpool": lambda layer, ins: _pool(layer, ins[0]),
    "avgpool": lambda layer, ins: _pool(layer, ins[0]),
    "add": lambda layer, ins: ins[0] + ins[1],
    "relu": lambda layer, ins: np.maximum(ins[0], 0.0),
    "leaky_relu": lambda layer, ins: np.where(ins[0] >= 0, ins[0], layer.slope * ins[0]),
    "sign": lambda layer, ins: sign(ins[0]),
    "flatten": lambda layer, ins: ins[0].reshape(-1),
    "softmax": lambda layer, ins: _softmax(ins[0]),
}


def eval_layer(layer: Layer, ins):
    """One layer on float64 inputs of one sample."""
    return EVAL[layer.type](layer, ins)


def run_sample(net: Network, x):
    """Every tensor of one sample, by name ("input" included)."""
    vals = {"input": np.asarray(x, dtype=np.float64).reshape(net.input_shape)}
    for layer in net.layers:
        vals[layer.name] = eval_layer(layer, [vals[s] for s in layer.inputs])
    return vals


_FLOAT32_MAX = np.finfo(np.float32).max           # a float32, so float16 compares in float32
_KINDS = {"b": "bool", "c": "complex", "U": "string", "S": "bytes", "M": "datetime64", "m": "timedelta64",
          "O": "object", "V": "structured"}


def split_batch(net: Network, x, where: str | None = None, batch: bool = True, values: bool = True):
    """(samples, is_batch): x checked as the network's input, the one check behind the callable,
    reference() and the simulator.

    x must be one sample of the input shape or (if batch) a batch of them on a first axis; of
    integer or floating dtype (complex, bool, strings, bytes, dates, objects are refused); every
    value finite and inside float32's range, the library's input type (docs/trust.md). Anything
    else raises XnorgenError(where, ...) naming the first bad index; where defaults to
    "<net>: input". samples keep x's dtype; is_batch says whether x had the batch axis.
    values=False skips the value check of a float32 x: for a caller that checks each sample in C
    just before using it (toolchain.runtime), raising the same error through bad_value.
    """
    where = where or f"{net.name}: input"
    try:
        x = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise XnorgenError(where, f"not an array of numbers ({e})") from None
    if x.dtype.kind not in "iuf":
        kind = _KINDS.get(x.dtype.kind, "non-numeric")
        hint = "; convert with .astype(np.float32)" if x.dtype.kind == "b" else ""
        raise XnorgenError(where, f"{kind} values (dtype {str(x.dtype)[:60]}) are not accepted: the input must be real "
                           f"numbers, a float or integer dtype{hint}")
    shape = tuple(net.input_shape)
    if x.shape != shape and not (batch and x.shape[1:] == shape):
        want = f"{list(shape)} or [N, {', '.join(map(str, shape))}]" if batch else f"{list(shape)} (one sample)"
        raise XnorgenError(where, f"expected shape {want}, got {list(x.shape)}")
    # two reductions and no temporary array on the common path (NaN fails both comparisons); the
    # element-wise pass that names the bad index runs only when there is one
    checked = values or x.dtype != np.float32
    if checked and x.dtype.kind == "f" and x.size and not (x.min() >= -_FLOAT32_MAX and x.max() <= _FLOAT32_MAX):
        with np.errstate(invalid="ignore"):
            ok = np.abs(x) <= _FLOAT32_MAX              # False for NaN, +-inf and past float32
        if not ok.all():
            raise bad_value(x, np.unravel_index(np.argmin(ok), x.shape), where)
    return (x[None], False) if x.shape == shape else (x, True)


def bad_value(x: np.ndarray, i: tuple, where: str) -> XnorgenError:
    """The error for x[i], a value that is not finite or not inside float32's range."""
    what = "is not finite" if not np.isfinite(x[i]) else "is outside float32's range"
    return XnorgenError(where, f"value {x[i]} at index {[int(k) for k in i]} {what} "
                        "(inputs must be finite float32 numbers)")


def reference(net: Network, x):
    """Golden output(s) for one sample or a batch (float64)."""
    samples, is_batch = split_batch(net, x)
    outs = [run_sample(net, s)[net.output] for s in samples]
    outs = np.stack(outs) if outs else np.empty((0,) + tuple(net.output_shape))
    return outs if is_batch else outs[0]
