"""Stage 2, graph: the network as a networkx DAG with every tensor's shape.

Needs: a validated Description (description.read_description).
Guarantees: Network.layers holds exactly the layers the output depends on, in a
topological order that follows the file where it can; every layer's output
shape is in Network.shapes ("input" included); conv/pool padding, strides and
global-pool kernels are resolved to integer pairs; no tensor or weight array
has more than limits.MAX_TENSOR_ELEMENTS elements, nor the network more than
limits.MAX_PARAMETERS parameters.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from pathlib import Path

import networkx as nx

from xnorgen import limits
from xnorgen.frontend.description import Description, Layer
from xnorgen.errors import XnorgenError


@dataclass
class Network:
    name: str
    input_shape: tuple[int, ...]
    layers: list[Layer]            # topological order, output's ancestors only
    output: str
    graph: nx.DiGraph
    shapes: dict[str, tuple[int, ...]]
    path: Path | None = None
    weights_path: Path | None = None

    def layer(self, name: str) -> Layer:
        return self.graph.nodes[name]["layer"]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shapes[self.output]

    def where(self, layer: Layer | str) -> str:
        name = layer if isinstance(layer, str) else layer.name
        return f"{self.path or self.name}: layer {name}"


def build_graph(desc: Description) -> Network:
    """DAG of the description, pruned to the output's ancestors, with shapes inferred."""
    fname = str(desc.path or desc.name)
    g = nx.DiGraph()
    g.add_node("input", layer=None, order=-1)
    for i, layer in enumerate(desc.layers):
        g.add_node(layer.name, layer=layer, order=i)
    for layer in desc.layers:
        for src in layer.inputs:
            if src not in g:
                raise XnorgenError(f"{fname}: layer {layer.name}", f"input {src!r} is not a layer")
            g.add_edge(src, layer.name)
    if not nx.is_directed_acyclic_graph(g):
        cycle = " -> ".join(e[0] for e in nx.find_cycle(g))
        raise XnorgenError(fname, f"the layers form a cycle: {cycle}")
    keep = nx.ancestors(g, desc.output) | {desc.output}
    order = [n for n in nx.lexicographical_topological_sort(g, key=lambda n: g.nodes[n]["order"])
             if n in keep and n != "input"]
    net = Network(desc.name, desc.input_shape, [g.nodes[n]["layer"] for n in order], desc.output,
                  g.subgraph(keep | {"input"}).copy(), {"input": desc.input_shape},
                  desc.path, desc.weights_path)
    params = 0
    for layer in net.layers:
        ins = [net.shapes[s] for s in layer.inputs]
        net.shapes[layer.name] = shape = infer_shape(layer, ins, net.where(layer))
        arrays = [shape] + list(expected_params(layer, ins[0]).values())
        for a in arrays:
            if prod(a) > limits.MAX_TENSOR_ELEMENTS:
                raise XnorgenError(net.where(layer), f"a tensor of shape {list(a)} has more than "
                                   f"{limits.MAX_TENSOR_ELEMENTS} elements (xnorgen's limit)")
        params += sum(prod(a) for a in arrays[1:])
        if params > limits.MAX_PARAMETERS:
            raise XnorgenError(net.where(layer), f"the network has more than {limits.MAX_PARAMETERS} "
                               "parameters up to here (xnorgen's limit)")
    return net


def _window(size, k, s, p, where, axis):
    if size + 2 * p < k:
        raise XnorgenError(where, f"kernel {k} is larger than the padded input ({size} + 2*{p}) along {axis}")
    return (size + 2 * p - k) // s + 1


def _need_chw(shape, where, what):
    if len(shape) != 3:
        raise XnorgenError(where, f"{what} needs a [C, H, W] input, got shape {list(shape)}")


def _add_shape(layer, ins, where):
    if len(ins) != 2:
        raise XnorgenError(where, f"add takes exactly two inputs, got {len(ins)}")
    if ins[0] != ins[1]:
        raise XnorgenError(where, f"add inputs differ in shape: {list(ins[0])} vs {list(ins[1])}")
    return ins[0]


def _conv_shape(layer, shape, where):
    _need_chw(shape, where, "conv2d")
    (kh, kw) = layer.kernel
    if layer.padding == "same":
        layer.padding = ((kh - 1) // 2, (kw - 1) // 2)
    elif layer.padding == "valid":
        layer.padding = (0, 0)
    c, h, w = shape
    return (layer.filters,
            _window(h, kh, layer.stride[0], layer.padding[0], where, "height"),
            _window(w, kw, layer.stride[1], layer.padding[1], where, "width"))


def _pool_shape(layer, shape, where):
    _need_chw(shape, where, layer.type)
    c, h, w = shape
    if layer.global_:
        layer.kernel, layer.stride, layer.padding = (h, w), (h, w), (0, 0)
        return (c, 1, 1)
    if layer.stride is None:
        layer.stride = layer.kernel
    for p, k in zip(layer.padding, layer.kernel):
        if p >= k:
            raise XnorgenError(where, f"padding {p} must be smaller than the kernel {k}")
    return (c, _window(h, layer.kernel[0], layer.stride[0], layer.padding[0], where, "height"),
            _window(w, layer.kernel[1], layer.stride[1], layer.padding[1], where, "width"))


#: Output shape of each single-input layer type from its input shape (types not listed keep
#: their input's shape: batchnorm and the elementwise activations).
_SHAPES = {
    "conv2d": _conv_shape,
    "maxpool": _pool_shape,
    "avgpool": _pool_shape,
    "dense": lambda layer, shape, where: (layer.units,),
    "flatten": lambda layer, shape, where: (prod(shape),),
}


def infer_shape(layer: Layer, ins: list[tuple[int, ...]], where: str) -> tuple[int, ...]:
    """Output shape of one layer; resolves padding/stride/global kernel in place."""
    if layer.type == "add":
        return _add_shape(layer, ins, where)
    if len(ins) != 1:
        raise XnorgenError(where, f"{layer.type} takes one input, got {len(ins)}")
    shape_of = _SHAPES.get(layer.type)
    return shape_of(layer, ins[0], where) if shape_of else ins[0]


def expected_params(layer: Layer, in_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """The arrays a layer needs from the .npz, with their shapes."""
    if layer.type == "conv2d":
        p = {"weight": (layer.filters, in_shape[0], *layer.kernel)}
        return p | ({"bias": (layer.filters,)} if layer.bias else {})
    if layer.type == "dense":
        p = {"weight": (layer.units, prod(in_shape))}
        return p | ({"bias": (layer.units,)} if layer.bias else {})
    if layer.type == "batchnorm":
        return {k: (in_shape[0],) for k in ("gamma", "beta", "mean", "var")}
    return {}
