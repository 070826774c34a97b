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
import yaml

from .errors import XnorgenError
from .naming import is_c_identifier

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

def _int(v, where, lo=1):
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise XnorgenError(where, f"expected an integer >= {lo}, got {v!r}")
    return v


def _pair(lo):
    def parse(v, where):
        if isinstance(v, (list, tuple)) and len(v) == 2:
            return (_int(v[0], where, lo), _int(v[1], where, lo))
        if isinstance(v, (list, tuple)):
            raise XnorgenError(where, f"expected an int or a pair [h, w], got {v!r}")
        x = _int(v, where, lo)
        return (x, x)
    return parse


def _padding(v, where):
    if v in ("same", "valid"):
        return v
    return _pair(0)(v, where)


def _bool(v, where):
    if not isinstance(v, bool):
        raise XnorgenError(where, f"expected true or false, got {v!r}")
    return v


def _mode(v, where):
    if v not in MODES:
        raise XnorgenError(where, f"mode must be one of {', '.join(MODES)}, got {v!r}")
    return v


def _pad_value(v, where):
    if isinstance(v, bool) or v not in (0, 1, -1):
        raise XnorgenError(where, f"pad_value must be 0, 1 or -1, got {v!r}")
    return int(v)


def _eps(v, where):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
        raise XnorgenError(where, f"eps must be a positive number, got {v!r}")
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
    "sign": (Elementwise, {}),
    "flatten": (Elementwise, {}),
    "softmax": (Elementwise, {}),
    "add": (Add, {}),
}
_COMMON = {"name", "type", "inputs"}
_TOP = {"name", "input", "weights", "output", "layers"}


def _parse_layer(i, spec, prev, fname):
    where = f"{fname}: layers[{i}]"
    if not isinstance(spec, dict):
        raise XnorgenError(where, "each layer must be a mapping with name and type")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise XnorgenError(where, "missing layer name")
    where = f"{fname}: layer {name}"
    if name == "input":
        raise XnorgenError(where, "'input' is reserved for the network input")
    ltype = spec.get("type")
    if ltype not in LAYER_TYPES:
        raise XnorgenError(where, f"unknown layer type {ltype!r} (known: {', '.join(sorted(LAYER_TYPES))})")
    cls, fields = LAYER_TYPES[ltype]
    unknown = set(spec) - _COMMON - set(fields)
    if unknown:
        raise XnorgenError(where, f"unknown field(s) {', '.join(sorted(unknown))} for type {ltype}")
    inputs = spec.get("inputs", [prev])
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or not all(isinstance(x, str) for x in inputs):
        raise XnorgenError(where, f"inputs must be a list of layer names, got {inputs!r}")
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


def read_description(path) -> Description:
    """Parse and validate net.yaml (fields only). Raises XnorgenError on any problem."""
    path = Path(path)
    fname = str(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise XnorgenError(fname, f"cannot read: {e.strerror or e}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise XnorgenError(fname, f"invalid YAML{at}: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(doc, dict):
        raise XnorgenError(fname, "expected a mapping with name, input and layers")
    unknown = set(doc) - _TOP
    if unknown:
        raise XnorgenError(fname, f"unknown top-level field(s) {', '.join(sorted(unknown))}")
    name = doc.get("name")
    if not isinstance(name, str) or not is_c_identifier(name):
        raise XnorgenError(f"{fname}: name", f"must be a C identifier, got {name!r}")
    inp = doc.get("input")
    shape = inp.get("shape") if isinstance(inp, dict) else None
    if (not isinstance(shape, list) or len(shape) not in (1, 3)
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape)):
        raise XnorgenError(f"{fname}: input", f"expected {{shape: [C, H, W]}} or {{shape: [N]}}, got {inp!r}")
    specs = doc.get("layers")
    if not isinstance(specs, list) or not specs:
        raise XnorgenError(f"{fname}: layers", "expected a non-empty list of layers")
    layers, prev = [], "input"
    for i, spec in enumerate(specs):
        layer = _parse_layer(i, spec, prev, fname)
        if any(layer.name == other.name for other in layers):
            raise XnorgenError(f"{fname}: layer {layer.name}", "duplicate layer name")
        layers.append(layer)
        prev = layer.name
    output = doc.get("output", layers[-1].name)
    if not any(output == layer.name for layer in layers):
        raise XnorgenError(f"{fname}: output", f"no layer named {output!r}")
    weights = doc.get("weights")
    if weights is not None and not isinstance(weights, str):
        raise XnorgenError(f"{fname}: weights", f"expected a file name, got {weights!r}")
    weights_path = (path.parent / weights) if weights else None
    return Description(name, tuple(shape), layers, output, path, weights_path)
