"""fp32 ONNX twins of the benchmark layers, for onnxruntime (an optional benchmark extra)."""
from __future__ import annotations

import numpy as np


def _session(graph_nodes, inputs, outputs, initializers, threads=1):
    import onnxruntime as ort
    from onnx import helper

    graph = helper.make_graph(graph_nodes, "bench", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    # idle workers must not spin: they would take the core from whatever runs next (interleaved)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def conv_session(c, h, w, f, k, pad, stride=1, seed=0, threads=1, batch=1):
    from onnx import TensorProto, helper, numpy_helper
    wt = np.random.default_rng(seed).standard_normal((f, c, k, k)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[k, k], pads=[pad] * 4, strides=[stride] * 2)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, c, h, w])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return _session([node], [x], [y], [numpy_helper.from_array(wt, "w")], threads)


def dense_session(n_in, n_out, seed=0, threads=1, batch=1):
    from onnx import TensorProto, helper, numpy_helper
    wt = np.random.default_rng(seed).standard_normal((n_in, n_out)).astype(np.float32)
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, n_in])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return _session([node], [x], [y], [numpy_helper.from_array(wt, "w")], threads)


def network_session(net, seed=0, threads=1, batch=1):
    """The float twin of an xnorgen Network (conv/dense/bn/relu/pool/add/flatten/softmax),
    binary layers replaced by float ones of the same shape."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(arr.astype(np.float32), name))
        return name

    for layer in net.layers:
        ins, name, t = list(layer.inputs), layer.name, layer.type
        in_shape = net.shapes[ins[0]]
        if t == "conv2d":
            c = in_shape[0]
            wn = init(f"{name}.w", rng.standard_normal((layer.filters, c, *layer.kernel)) * 0.1)
            nodes.append(helper.make_node("Conv", [ins[0], wn], [name], kernel_shape=list(layer.kernel),
                                          strides=list(layer.stride), pads=list(layer.padding) * 2))
        elif t == "dense":
            n = int(np.prod(in_shape))
            src = ins[0]
            if len(in_shape) != 1:
                nodes.append(helper.make_node("Flatten", [src], [f"{name}.flat"]))
                src = f"{name}.flat"
            wn = init(f"{name}.w", rng.standard_normal((n, layer.units)) * 0.05)
            nodes.append(helper.make_node("MatMul", [src, wn], [name]))
        elif t == "batchnorm":
            c = in_shape[0]
            args = [init(f"{name}.{p}", v) for p, v in (("g", np.ones(c)), ("b", np.zeros(c)),
                                                         ("m", np.zeros(c)), ("v", np.ones(c)))]
            nodes.append(helper.make_node("BatchNormalization", [ins[0], *args], [name]))
        elif t == "relu":
            nodes.append(helper.make_node("Relu", ins, [name]))
        elif t in ("maxpool", "avgpool"):
            op = ("Global" if layer.global_ else "") + ("MaxPool" if t == "maxpool" else "AveragePool")
            kw = {} if layer.global_ else {"kernel_shape": list(layer.kernel), "strides": list(layer.stride),
                                           "pads": list(layer.padding) * 2}
            nodes.append(helper.make_node(op, ins, [name], **kw))
        elif t == "add":
            nodes.append(helper.make_node("Add", ins, [name]))
        elif t == "flatten":
            nodes.append(helper.make_node("Flatten", ins, [name]))
        elif t == "softmax":
            nodes.append(helper.make_node("Softmax", ins, [name], axis=-1))
        else:
            raise ValueError(f"no ONNX twin for {t}")
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, *net.input_shape])
    y = helper.make_tensor_value_info(net.output, TensorProto.FLOAT, None)
    return _session(nodes, [x], [y], inits, threads)
