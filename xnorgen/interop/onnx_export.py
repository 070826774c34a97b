"""A network's section-2 semantics as a standard ONNX model (opset 13) that onnxruntime runs.

Needs: a Network with its weights. Guarantees: one ONNX node group per layer, in the network's
order, every step of the contract spelled out with standard operators so the model can be read
in Netron and checked against onnxruntime:
- sign(x) = Where(x >= 0, 1, -1) (sign(0) = +1 as the contract says);
- binary weights as their signs (+-1 initializers), alpha as a Mul by [1, F, 1, 1];
- K as ReduceMean(|x|, channels) -> AveragePool(kernel, stride, padding, count_include_pad=1),
  multiplied in; dense's beta as ReduceMean(|x|) over the vector;
- pad_value +-1 as a Pad of the signs with that value before an unpadded Conv.
xnorgen.interop.onnx_import reads all of it back (import(export(net)) is the same network, the
binary weights as sign(W) * alpha).
"""
from __future__ import annotations

import numpy as np

from xnorgen.frontend.graph import Network
from xnorgen.interop.onnx_read import onnx_module
from xnorgen.reference import alpha, sign

OPSET = 13


class _Graph:
    def __init__(self, onnx):
        self.onnx, self.h = onnx, onnx.helper
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, name: str, a, dtype=np.float32) -> str:
        a = np.asarray(a, dtype=dtype)
        self.inits.append(self.onnx.numpy_helper.from_array(a, name))
        return name

    def op(self, op_type: str, inputs: list, base: str, **attrs) -> str:
        self.n += 1
        out = f"{base}/{op_type}_{self.n}"
        self.nodes.append(self.h.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def sign(self, x: str, base: str) -> str:
        ge = self.op("GreaterOrEqual", [x, self.scalar(0.0)], base)
        return self.op("Where", [ge, self.scalar(1.0), self.scalar(-1.0)], base)

    def scalar(self, v: float) -> str:
        name = f"const/{v:g}"
        if not any(t.name == name for t in self.inits):
            self.const(name, np.float32(v))
        return name


def _conv(g: _Graph, layer, x: str) -> str:
    n, f = layer.name, layer.filters
    (ph, pw), (sh, sw), (kh, kw) = layer.padding, layer.stride, layer.kernel
    w = layer.params["weight"]
    pads = [ph, pw, ph, pw]
    if layer.mode == "float":
        ins = [x, g.const(f"{n}.weight", w)] + ([g.const(f"{n}.bias", layer.params["bias"])] if layer.bias else [])
        return g.op("Conv", ins, n, kernel_shape=[kh, kw], strides=[sh, sw], pads=pads)
    src = x
    if layer.mode == "xnor":
        src = g.sign(x, n)
        if layer.pad_value != 0:
            pad = g.const(f"{n}.pads", [0, 0, ph, pw, 0, 0, ph, pw], np.int64)
            src = g.op("Pad", [src, pad, g.scalar(float(layer.pad_value))], n, mode="constant")
            pads = [0, 0, 0, 0]
    y = g.op("Conv", [src, g.const(f"{n}.sign_weight", sign(w))], n, kernel_shape=[kh, kw], strides=[sh, sw], pads=pads)
    if layer.scale_weight:
        y = g.op("Mul", [y, g.const(f"{n}.alpha", alpha(layer, w).reshape(1, f, 1, 1))], n)
    if layer.mode == "xnor" and layer.scale_input:
        a = g.op("ReduceMean", [g.op("Abs", [x], n)], n, axes=[1], keepdims=1)
        k = g.op("AveragePool", [a], n, kernel_shape=[kh, kw], strides=[sh, sw], pads=[ph, pw, ph, pw],
                 count_include_pad=1)
        y = g.op("Mul", [y, k], n)
    if layer.bias:
        y = g.op("Add", [y, g.const(f"{n}.bias", layer.params["bias"].reshape(1, f, 1, 1))], n)
    return y


def _dense(g: _Graph, layer, x: str, in_shape) -> str:
    n, u = layer.name, layer.units
    if len(in_shape) != 1:                       # a [C, H, W] input is read in C order
        x = g.op("Flatten", [x], n, axis=1)
    w = layer.params["weight"]
    if layer.mode == "float":
        ins = [x, g.const(f"{n}.weight", w)] + ([g.const(f"{n}.bias", layer.params["bias"])] if layer.bias else [])
        return g.op("Gemm", ins, n, transB=1)
    src = g.sign(x, n) if layer.mode == "xnor" else x
    y = g.op("Gemm", [src, g.const(f"{n}.sign_weight", sign(w))], n, transB=1)
    if layer.scale_weight:
        y = g.op("Mul", [y, g.const(f"{n}.alpha", alpha(layer, w).reshape(1, u))], n)
    if layer.mode == "xnor" and layer.scale_input:
        y = g.op("Mul", [y, g.op("ReduceMean", [g.op("Abs", [x], n)], n, axes=[0, 1], keepdims=1)], n)
    if layer.bias:
        y = g.op("Add", [y, g.const(f"{n}.bias", layer.params["bias"].reshape(1, u))], n)
    return y


def _layer(g: _Graph, layer, ins: list, shapes: dict) -> str:
    t, n, x = layer.type, layer.name, ins[0]
    in_shape = shapes[layer.inputs[0]]
    if t == "conv2d":
        return _conv(g, layer, x)
    if t == "dense":
        return _dense(g, layer, x, in_shape)
    if t == "batchnorm":
        p = layer.params
        return g.op("BatchNormalization", [x] + [g.const(f"{n}.{k}", p[k]) for k in ("gamma", "beta", "mean", "var")],
                    n, epsilon=float(layer.eps))
    if t == "relu":
        return g.op("Relu", [x], n)
    if t == "leaky_relu":
        return g.op("LeakyRelu", [x], n, alpha=float(layer.slope))
    if t == "sign":
        return g.sign(x, n)
    if t == "flatten":
        return g.op("Flatten", [x], n, axis=1) if len(in_shape) != 1 else g.op("Identity", [x], n)
    if t == "softmax":                           # over the whole tensor
        if len(in_shape) == 1:
            return g.op("Softmax", [x], n, axis=-1)
        s = g.op("Softmax", [g.op("Flatten", [x], n, axis=1)], n, axis=-1)
        shape = g.const(f"{n}.shape", [1, *in_shape], np.int64)
        return g.op("Reshape", [s, shape], n)
    if t in ("maxpool", "avgpool"):
        op = "Max" if t == "maxpool" else "Average"
        if layer.global_:
            return g.op(f"Global{op}Pool", [x], n)
        (ph, pw) = layer.padding
        extra = {"count_include_pad": 1} if t == "avgpool" else {}
        return g.op(f"{op}Pool", [x], n, kernel_shape=list(layer.kernel), strides=list(layer.stride),
                    pads=[ph, pw, ph, pw], **extra)
    if t == "add":
        return g.op("Add", ins, n)
    raise AssertionError(f"no ONNX export for layer type {t}: add it to onnx_export._layer")


def export_onnx(net: Network):
    """The ModelProto of net (weights attached: xnorgen.load with weights)."""
    onnx = onnx_module(str(net.path or net.name))
    g = _Graph(onnx)
    tensor = {"input": "input"}
    for layer in net.layers:
        tensor[layer.name] = _layer(g, layer, [tensor[i] for i in layer.inputs], net.shapes)
    out = g.op("Identity", [tensor[net.output]], "output")
    h, F = onnx.helper, onnx.TensorProto.FLOAT
    graph = h.make_graph(g.nodes, net.name, [h.make_tensor_value_info("input", F, [1, *net.input_shape])],
                         [h.make_tensor_value_info(out, F, [1, *net.output_shape])], g.inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)], producer_name="xnorgen")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
