"""Small ONNX graphs for the import tests, built with onnx.helper, and evaluators for them:
onnxruntime for standard ONNX, and a numpy evaluator of QONNX's BipolarQuant (s where x >= 0,
else -s) for models that use it (onnxruntime does not know the op)."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

QONNX = "qonnx.custom_op.general"


class G:
    """A graph under construction: g.node("Conv", [x, w], pads=[...]) returns the output name."""

    def __init__(self, shape, name="m"):
        self.shape, self.name = list(shape), name
        self.nodes, self.inits, self.n = [], [], 0

    def c(self, a, dtype=np.float32) -> str:
        self.n += 1
        name = f"c{self.n}"
        self.inits.append(numpy_helper.from_array(np.asarray(a, dtype=dtype), name))
        return name

    def node(self, op, inputs, domain="", name=None, **attrs) -> str:
        self.n += 1
        out = f"t{self.n}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name or f"{op.lower()}{self.n}",
                                           domain=domain, **attrs))
        return out

    def model(self, out, out_shape, opset=13, qonnx=False):
        graph = helper.make_graph(self.nodes, self.name,
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, *self.shape])],
                                  [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, *out_shape])],
                                  self.inits)
        ops = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(QONNX, 1)] if qonnx else [])
        m = helper.make_model(graph, opset_imports=ops)
        m.ir_version = 8
        return m

    def save(self, path, out, out_shape, **kw):
        onnx.save(self.model(out, out_shape, **kw), str(path))
        return path


def onnxruntime_outputs(path, xs) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.stack([sess.run(None, {name: x[None].astype(np.float32)})[0][0] for x in xs])


def bipolar_outputs(path, xs) -> np.ndarray:
    """A numpy evaluation of a model using QONNX BipolarQuant and Gemm / BatchNormalization /
    Conv (the ops the QONNX tests use), in float64."""
    m = onnx.load(str(path))
    consts = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in m.graph.initializer}
    outs = []
    for x in xs:
        v = dict(consts, x=x[None].astype(np.float64))
        for n in m.graph.node:
            a = {at.name: helper.get_attribute_value(at) for at in n.attribute}
            i = [v[k] for k in n.input]
            if n.op_type == "BipolarQuant":
                r = np.where(i[0] >= 0, 1.0, -1.0) * i[1]
            elif n.op_type == "Gemm":
                r = i[0] @ (i[1].T if a.get("transB") else i[1]) + (i[2] if len(i) > 2 else 0)
            elif n.op_type == "BatchNormalization":
                sh = (1, -1) + (1,) * (i[0].ndim - 2)
                g_, b_, m_, v_ = (p.reshape(sh) for p in i[1:5])
                r = (i[0] - m_) / np.sqrt(v_ + a.get("epsilon", 1e-5)) * g_ + b_
            elif n.op_type == "Relu":
                r = np.maximum(i[0], 0)
            elif n.op_type == "Flatten":
                r = i[0].reshape(1, -1)
            elif n.op_type == "Conv":
                from xnorgen.reference import conv2d
                p = a.get("pads", [0, 0, 0, 0])
                r = conv2d(i[0][0], i[1], a.get("strides", [1, 1]), p[:2])[None]
                if len(i) > 2:
                    r = r + i[2].reshape(1, -1, 1, 1)
            else:
                raise NotImplementedError(n.op_type)
            v[n.output[0]] = r
        outs.append(v[m.graph.output[0].name][0])
    return np.stack(outs)
