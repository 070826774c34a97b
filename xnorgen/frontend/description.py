"""Stage 1, description: parse and validate net.yaml into typed layer dataclasses.

Needs: a path to a net.yaml (contract section 1).
Guarantees: every field present, typed and defaulted; unknown types/fields,
bad values and duplicate names raise XnorgenError naming file and layer.
Shapes and weights are checked later (graph.infer_shapes, description.attach_weights),
because both need the input shape of each layer.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xnorgen import limits
from xnorgen.errors import XnorgenError, show
from xnorgen.naming import check_layer_name, check_net_name
from xnorgen.frontend.userfiles import read_text
from xnorgen.frontend.yaml_loader import load_yaml

MODES = ("float", "bwn", "xnor")


@dataclass(kw_only=True)
class Layer:
    name: str
    type: str
    inputs: tuple[str, ...]
    params: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


@dataclass(kw_only=True)
class Conv2d(Layer):
    filters: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] | str = (0, 0)   # resolved to ints by graph.infer_shapes
    mode: str = "float"
    bias: bool = False
    scale_weight: bool = True
    scale_input: bool = True
    pad_value: int = 0


@dataclass(kw_only=True)
class Dense(Layer):
    units: int
    mode: str = "float"
    bias: bool = False
    scale_weight: bool = True
    scale_input: bool = True


@dataclass(kw_only=True)
class BatchNorm(Layer):
    eps: float = 1e-5


@dataclass(kw_only=True)
class Pool(Layer):          # type maxpool or avgpool
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None      # default: kernel
    padding: tuple[int, int] = (0, 0)
    global_: bool = False


@dataclass(kw_only=True)
class Elementwise(Layer):   # relu, sign, flatten, softmax
    pass


@dataclass(kw_only=True)
class LeakyRelu(Layer):     # y = x if x >= 0 else slope * x (an xnorgen extension of the contract)
    slope: float = 0.01


@dataclass(kw_only=True)
class Add(Layer):
    pass


@dataclass
class Description:
    """What net.yaml says, validated field by field (no shapes yet)."""
    name: str
    input_shape: tuple[int, ...]
    layers: list[Layer]
    output: str
    path: Path | None
    weights_path: Path | None


# ---- field parsers: each takes (value, where) and returns the typed value ----

def _int(v, where, lo=1, hi=limits.MAX_DIM):
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise XnorgenError(where, f"expected an integer >= {lo}, got {show(v)}")
    if v > hi:
        raise XnorgenError(where, f"{v} is larger than xnorgen's limit of {hi} for one size")
    return v


def _pair(lo):
    def parse(v, where):
        if isinstance(v, (list, tuple)) and len(v) == 2:
            return (_int(v[0], where, lo), _int(v[1], where, lo))
        if isinstance(v, (list, tuple)):
            raise XnorgenError(where, f"expected an int or a pair [h, w], got {show(v)}")
        x = _int(v, where, lo)
        return (x, x)
    return parse


def _padding(v, where):
    if isinstance(v, str) and v in ("same", "valid"):
        return v
    return _pair(0)(v, where)


def _bool(v, where):
    if not isinstance(v, bool):
        raise XnorgenError(where, f"expected true or false, got {show(v)}")
    return v


def _mode(v, where):
    if not isinstance(v, str) or v not in MODES:
        raise XnorgenError(where, f"mode must be one of {', '.join(MODES)}, got {show(v)}")
    return v


def _pad_value(v, where):
    if isinstance(v, bool) or not isinstance(v, int) or v not in (0, 1, -1):
        raise XnorgenError(where, f"pad_value must be 0, 1 or -1, got {show(v)}")
    return int(v)


def _eps(v, where):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf"):
        raise XnorgenError(where, f"eps must be a positive number, got {show(v)}")
    return float(v)


def _slope(v, where):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
        raise XnorgenError(where, f"expected a number in [0, 1], got {show(v)}")
    return float(v)


# type -> (class, {yaml field: (attribute, parser, required)})
_CONV = {"filters": ("filters", _int, True), "kernel": ("kernel", _pair(1), True),
         "stride": ("stride", _pair(1), False), "padding": ("padding", _padding, False),
         "mode": ("mode", _mode, False), "bias": ("bias", _bool, False),
         "scale_weight": ("scale_weight", _bool, False), "scale_input": ("scale_input", _bool, False),
         "pad_value": ("pad_value", _pad_value, False)}
_DENSE = {"units": ("units", _int, True), "mode": ("mode", _mode, False), "bias": ("bias", _bool, False),
          "scale_weight": ("scale_weight", _bool, False), "scale_input": ("scale_input", _bool, False)}
_POOL = {"kernel": ("kernel", _pair(1), False), "stride": ("stride", _pair(1), False),
         "padding": ("padding", _pair(0), False), "global": ("global_", _bool, False)}
LAYER_TYPES = {
    "conv2d": (Conv2d, _CONV),
    "dense": (Dense, _DENSE),
    "batchnorm": (BatchNorm, {"eps": ("eps", _eps, False)}),
    "maxpool": (Pool, _POOL),
    "avgpool": (Pool, _POOL),
    "relu": (Elementwise, {}),
    "leaky_relu": (LeakyRelu, {"slope": ("slope", _slope, False)}),
    "sign": (Elementwise, {}),
    "flatten": (Elementwise, {}),
    "softmax": (Elementwise, {}),
    "add": (Add, {}),
}
_COMMON = {"name", "type", "inputs"}
_TOP = {"name", "input", "weights", "output", "layers"}


def _keys(keys) -> str:
    """Field names for a message (the loader guarantees strings), each cut to 40 characters."""
    return ", ".join(k if len(k) <= 40 else k[:37] + "..." for k in sorted(keys))


def _parse_layer(i, spec, prev, fname):
    where = f"{fname}: layers[{i}]"
    if not isinstance(spec, dict):
        raise XnorgenError(where, "each layer must be a mapping with name and type")
    name = spec.get("name")
    check_layer_name(name, where)
    where = f"{fname}: layer {name}"
    ltype = spec.get("type")
    if not isinstance(ltype, str) or ltype not in LAYER_TYPES:
        raise XnorgenError(where, f"unknown layer type {show(ltype)} (known: {', '.join(sorted(LAYER_TYPES))})")
    cls, fields = LAYER_TYPES[ltype]
    unknown = set(spec) - _COMMON - set(fields)
    if unknown:
        raise XnorgenError(where, f"unknown field(s) {_keys(unknown)} for type {ltype}")
    inputs = spec.get("inputs", [prev])
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or not all(isinstance(x, str) for x in inputs):
        raise XnorgenError(where, f"inputs must be a list of layer names, got {show(inputs)}")
    kwargs = {}
    for key, (attr, parse, required) in fields.items():
        if key in spec:
            kwargs[attr] = parse(spec[key], f"{where}: {key}")
        elif required:
            raise XnorgenError(where, f"missing required field {key!r} for type {ltype}")
    if cls is Pool and not kwargs.get("global_", False) and "kernel" not in kwargs:
        raise XnorgenError(where, f"{ltype} needs a kernel (or global: true)")
    if cls is Conv2d and kwargs.get("pad_value", 0) != 0 and kwargs.get("mode", "float") != "xnor":
        # pad_value pads the *binarized* input (contract section 2); float and bwn convolutions
        # see the real-valued input, which is zero-padded like any convolution.
        warnings.warn(f"{where}: pad_value applies to xnor layers only; this {kwargs.get('mode', 'float')} "
                      "convolution zero-pads", stacklevel=2)
        kwargs["pad_value"] = 0
    return cls(name=name, type=ltype, inputs=tuple(inputs), **kwargs)


def _input_shape(inp, where):
    if not isinstance(inp, dict) or set(inp) != {"shape"}:
        raise XnorgenError(where, f"expected {{shape: [C, H, W]}} or {{shape: [N]}}, got {show(inp)}")
    shape = inp["shape"]
    if not isinstance(shape, list) or len(shape) not in (1, 3):
        raise XnorgenError(where, f"shape must be [C, H, W] or [N], got {show(shape)}")
    return tuple(_int(d, f"{where}: shape") for d in shape)


def read_description(path, weights=None) -> Description:
    """Parse and validate net.yaml (fields only). Raises XnorgenError on any problem.
    weights: a weights file to use instead of the one the description names (`--weights`)."""
    path = Path(path)
    doc = load_yaml(read_text(path, "the network description"), str(path))
    return parse_description(doc, path, weights)


def parse_description(doc, path: Path, weights=None) -> Description:
    """Validate a description mapping (net.yaml's, or one an importer made from a model file at
    path): the fields, names, layer list and output. weights: as for read_description."""
    fname = str(path)
    if not isinstance(doc, dict):
        raise XnorgenError(fname, "expected a mapping with name, input and layers")
    unknown = set(doc) - _TOP
    if unknown:
        raise XnorgenError(fname, f"unknown top-level field(s) {_keys(unknown)}")
    name = doc.get("name")
    check_net_name(name, f"{fname}: name")
    shape = _input_shape(doc.get("input"), f"{fname}: input")
    specs = doc.get("layers")
    if not isinstance(specs, list) or not specs:
        raise XnorgenError(f"{fname}: layers", "expected a non-empty list of layers")
    if len(specs) > limits.MAX_LAYERS:
        raise XnorgenError(f"{fname}: layers", f"{len(specs)} layers, more than the limit of {limits.MAX_LAYERS}")
    layers, prev, names = [], "input", set()
    for i, spec in enumerate(specs):
        layer = _parse_layer(i, spec, prev, fname)
        if layer.name in names:
            raise XnorgenError(f"{fname}: layer {layer.name}", "duplicate layer name")
        names.add(layer.name)
        layers.append(layer)
        prev = layer.name
    output = doc.get("output", layers[-1].name)
    if not isinstance(output, str) or output not in names:
        raise XnorgenError(f"{fname}: output", f"no layer named {show(output)}")
    if weights is None:
        weights = doc.get("weights")
        if weights is not None and (not isinstance(weights, str) or not weights or "\0" in weights):
            raise XnorgenError(f"{fname}: weights", f"expected a file name, got {show(weights)}")
        weights_path = (path.parent / weights) if weights else None
    else:
        weights_path = Path(weights)
    return Description(name, shape, layers, output, path, weights_path)
