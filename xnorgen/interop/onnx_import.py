"""ONNX / QONNX model -> the net.yaml mapping and its arrays (contract v2, section 4).

Needs: a model that onnx_read.read_model accepted. Guarantees: a description mapping and
{"<layer>.<param>": array} that the normal front end (parse_description, build_graph,
attach_weights) then validates like any net.yaml; or one XnorgenError line naming the node.

How it reads a graph: nodes in their (topological) order, each tensor becoming a `Val`:
a constant (initializers, Constant nodes, and anything computed from constants only), a layer's
output, or one of the binarization patterns waiting for its consumer:
- `bin`: sign(x) of a layer output times a scale: QONNX BipolarQuant(x, s) (s where x >= 0, else
  -s: the contract's sign), ONNX Sign (sign(0) = 0: one warning), or Where(x >= 0, s, -s);
- `absmean` / `kmap` / `beta`: the paper's input scaling, mean|x| over channels, boxed by an
  AveragePool (or a constant Conv of 1/(kh*kw)) into K, or mean|x| over a vector (dense's beta).
Conv and Gemm/MatMul with constant weights become conv2d / dense: weights binary per filter
(BipolarQuant or Sign of a constant, or exactly +-a_f in every filter) make them bwn, and xnor
with a `bin` input; a following Mul by a per-filter constant folds into the weights, a Mul by the
matching K sets scale_input, an Add of a per-filter constant becomes the bias.
Binary weights are stored as their effective values (+-a_f): the contract's alpha = mean|W_f| and
sign(W) give them back exactly.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np

from xnorgen.errors import XnorgenError
from xnorgen.naming import LAYER_NAME

from . import onnx_linear as lin
from . import onnx_ops
from .onnx_ops import Val
from .onnx_read import QONNX_DOMAINS, attributes, read_model, short, to_array


#: The default domain's handlers, built once.
HANDLERS = {**onnx_ops.HANDLERS, "Conv": lin.conv, "Gemm": lin.dense, "MatMul": lin.dense, "Mul": lin.mul,
            "Add": lin.add, "Div": lin.div}


@dataclass
class Importer:
    model: object
    where: str
    vals: dict = field(default_factory=dict)
    layers: list = field(default_factory=list)
    arrays: dict = field(default_factory=dict)
    names: set = field(default_factory=set)
    uses: dict = field(default_factory=dict)
    pending: dict = field(default_factory=dict)     # tensor -> the conv/dense layer a Mul/Add may fold into
    warned: set = field(default_factory=set)

    # ---------------------------------------------------------------- bookkeeping
    def fail(self, node, why: str):
        raise XnorgenError(f"{self.where}: node {short(node.name or node.op_type)} ({node.op_type})", why)

    def warn(self, key: str, text: str):
        if key not in self.warned:
            self.warned.add(key)
            warnings.warn(f"{self.where}: {text}", stacklevel=3)

    def layer_name(self, node, suffix: str = "") -> str:
        """A unique, valid layer name from the node's name (or its op type)."""
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", node.name or node.op_type.lower())[:100] + suffix
        if not re.match(r"[A-Za-z_]", base):
            base = "n_" + base
        name, i = base, 1
        while name in self.names or name == "input" or not LAYER_NAME.match(name):
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name

    def add_layer(self, node, spec: dict, shape: tuple, params: dict | None = None, suffix: str = "") -> Val:
        assert spec.get("inputs"), "every imported layer names its inputs"
        name = self.layer_name(node, suffix)
        self.layers.append(dict(name=name, **spec))
        for k, v in (params or {}).items():
            self.arrays[f"{name}.{k}"] = np.asarray(v, dtype=np.float32)
        return Val("layer", layer=name, shape=tuple(shape))

    def get(self, node, i: int, optional: bool = False) -> Val | None:
        if i >= len(node.input) or not node.input[i]:
            if optional:
                return None
            self.fail(node, f"input {i} is missing")
        v = self.vals.get(node.input[i])
        if v is None:
            self.fail(node, f"input {short(node.input[i])} is not produced by any node before it")
        return v

    def const(self, node, i: int, optional: bool = False, what: str = "a constant") -> np.ndarray | None:
        v = self.get(node, i, optional)
        if v is None:
            return None
        if v.kind != "const":
            self.fail(node, f"input {i} must be {what}, computed from initializers only")
        return v.const

    def activation(self, node, i: int = 0) -> Val:
        """Input i as a layer output (a plain tensor, not a pattern in progress)."""
        v = self.get(node, i)
        if v.kind != "layer":
            what = {"const": "a constant", "bin": "a binarized tensor",
                    "clip": "a Clip, which xnorgen reads only right before a sign"}.get(v.kind, f"an intermediate ({v.kind})")
            self.fail(node, f"input {i} is {what}; xnorgen needs a layer output here")
        return v

    # ---------------------------------------------------------------- the graph
    def run(self):
        g = self.model.graph
        for t in g.initializer:
            self.vals[t.name] = Val("const", const=to_array(t, self.where))
        inputs = [i for i in g.input if i.name not in self.vals]
        if len(inputs) != 1:
            raise XnorgenError(self.where, f"the model has {len(inputs)} inputs besides its initializers; xnorgen takes one")
        shape = self.input_shape(inputs[0])
        self.vals[inputs[0].name] = Val("layer", layer="input", shape=shape)
        for n in g.node:
            for t in n.input:
                self.uses[t] = self.uses.get(t, 0) + 1
        for t in g.output:
            self.uses[t.name] = self.uses.get(t.name, 0) + 1
        for node in g.node:
            self.node(node)
        if len(g.output) != 1:
            raise XnorgenError(self.where, f"the model has {len(g.output)} outputs; xnorgen takes one")
        out = self.vals.get(g.output[0].name)
        if out is None or out.kind != "layer" or out.layer == "input":
            raise XnorgenError(self.where, f"the output {short(g.output[0].name)} is not a layer's output")
        if not self.layers:
            raise XnorgenError(self.where, "the model has no layers")
        name = re.sub(r"[^A-Za-z0-9_]", "_", g.name or "model")[:60]
        name = name if re.match(r"[A-Za-z_]", name) else "net_" + name
        doc = {"name": name, "input": {"shape": list(shape)}, "output": out.layer, "layers": self.layers}
        return doc, self.arrays

    def input_shape(self, inp) -> tuple:
        tt = inp.type.tensor_type
        if tt.elem_type != 1:           # FLOAT
            raise XnorgenError(self.where, f"input {short(inp.name)} is not float32")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if len(dims) not in (2, 4) or dims[0] not in (1, None):
            raise XnorgenError(self.where, f"input {short(inp.name)} has shape {dims}; xnorgen takes "
                                           "[1, C, H, W] or [1, N] (a batch of 1 or symbolic)")
        if any(d is None or d < 1 for d in dims[1:]):
            raise XnorgenError(self.where, f"input {short(inp.name)} has symbolic or empty dims {dims[1:]}")
        return tuple(dims[1:])

    def node(self, node):
        if node.domain in QONNX_DOMAINS:
            if node.op_type != "BipolarQuant":
                self.fail(node, f"QONNX op {node.op_type} is not supported (BipolarQuant is)")
            handler = onnx_ops.bipolar_quant
        elif node.domain not in ("", "ai.onnx"):
            self.fail(node, f"operator domain {short(node.domain)} is not supported")
        else:
            handler = HANDLERS.get(node.op_type)
            if handler is None:
                self.fail(node, f"operator {node.op_type} is not supported (docs/onnx.md lists what is)")
        if len(node.output) != 1 and node.op_type not in ("Dropout", "MaxPool", "BatchNormalization"):
            self.fail(node, "nodes with several outputs are not supported")
        for extra in node.output[1:]:
            if extra and self.uses.get(extra):
                self.fail(node, f"its output {short(extra)} is used; xnorgen computes only the first")
        out = handler(self, node, attributes(node, f"{self.where}: node {short(node.name)}"))
        self.vals[node.output[0]] = out


def import_onnx(path):
    """(description mapping, {"<layer>.<param>": float32 array}) of the model at path; warnings
    for semantics that differ (ONNX Sign(0) = 0)."""
    model = read_model(path)
    return Importer(model, str(path)).run()
