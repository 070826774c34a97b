"""Reading an .onnx file as a stranger's file (contract section 7): bounded bytes, no external
data, tensors checked from their dims before they are materialized, one error line naming the
file (and the node, where there is one).

Needs the `onnx` package (the `onnx` extra); the import of it is deferred so xnorgen runs without.
"""
from __future__ import annotations

from math import prod

import numpy as np

from xnorgen import limits
from xnorgen.errors import XnorgenError
from xnorgen.frontend.userfiles import open_regular

#: ONNX opsets of the default domain the importer knows (Conv, Gemm, BatchNormalization, pools,
#: Softmax ... as specified from 11 to 21).
OPSETS = range(11, 22)
#: Custom domains whose BipolarQuant the importer reads (QONNX, and FINN's older name for it).
QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general")


def onnx_module(where: str):
    try:
        import onnx
    except ImportError:
        raise XnorgenError(where, "reading ONNX needs the onnx package: pip install 'xnorgen[onnx]'") from None
    return onnx


def read_model(path):
    """The ModelProto of path, after the file-level checks: a regular file under
    limits.MAX_ONNX_BYTES, parseable, an opset the importer knows, no external data."""
    where = str(path)
    onnx = onnx_module(where)
    with open_regular(path, "the ONNX model", limits.MAX_ONNX_BYTES) as f:
        try:
            data = f.read(limits.MAX_ONNX_BYTES + 1)
        except OSError as e:
            raise XnorgenError(where, f"cannot read the ONNX model: {e.strerror or e}") from None
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:                     # protobuf's DecodeError and friends
        raise XnorgenError(where, f"not an ONNX model ({type(e).__name__})") from None
    opset = {o.domain or "": o.version for o in model.opset_import}
    if opset.get("", opset.get("ai.onnx")) not in OPSETS:
        raise XnorgenError(where, f"opset {opset.get('')} of the default domain; the importer reads "
                                  f"{OPSETS.start}-{OPSETS.stop - 1}")
    for t in _all_tensors(model.graph):
        if t.data_location == onnx.TensorProto.EXTERNAL or t.external_data:
            raise XnorgenError(where, f"tensor {_short(t.name)} keeps its data in an external file, which xnorgen "
                                      "does not open; put it inside: onnx.save(onnx.load(MODEL), NEW, "
                                      "save_as_external_data=False) (torch.onnx.export with dynamo writes it outside)")
    if len(model.graph.node) > 8 * limits.MAX_LAYERS:
        raise XnorgenError(where, f"{len(model.graph.node)} nodes, more than the limit of {8 * limits.MAX_LAYERS}")
    return model


def _all_tensors(graph):
    yield from graph.initializer
    for n in graph.node:
        for a in n.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors


def to_array(tensor, where: str) -> np.ndarray:
    """A TensorProto as a float64 array, its size checked from its dims first."""
    from onnx import numpy_helper
    dims = tuple(int(d) for d in tensor.dims)
    if any(d < 0 for d in dims) or prod(dims) > limits.MAX_TENSOR_ELEMENTS:
        raise XnorgenError(where, f"tensor {_short(tensor.name)} has dims {list(dims)[:8]}, beyond the limit "
                                  f"of {limits.MAX_TENSOR_ELEMENTS} elements")
    try:
        a = numpy_helper.to_array(tensor)
    except Exception as e:
        raise XnorgenError(where, f"tensor {_short(tensor.name)} cannot be read ({type(e).__name__})") from None
    if a.dtype.kind not in "iufb":
        raise XnorgenError(where, f"tensor {_short(tensor.name)} has type {a.dtype}, not a number")
    if a.shape != dims:
        raise XnorgenError(where, f"tensor {_short(tensor.name)} holds {a.size} values for dims {list(dims)}")
    return a.astype(np.float64) if a.dtype.kind != "i" else a.astype(np.int64)


def attributes(node, where: str) -> dict:
    """{name: value} of a node's attributes (numbers, strings, lists, tensors as arrays)."""
    from onnx import helper
    out = {}
    for a in node.attribute:
        if a.HasField("t"):
            out[a.name] = to_array(a.t, where)
        else:
            v = helper.get_attribute_value(a)
            out[a.name] = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
    return out


def _short(name: str) -> str:
    """A name from the model for a message: printable, at most 40 characters."""
    s = "".join(c if c.isprintable() else "?" for c in str(name))
    return repr(s if len(s) <= 40 else s[:37] + "...")


short = _short
