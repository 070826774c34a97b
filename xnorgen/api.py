"""The Python API of contract section 5: load, reference, build, simulate."""
from __future__ import annotations

from .build import load_module
from .compiler import compile_network
from .description import read_description
from .graph import Network, build_graph
from .reference import reference  # noqa: F401  (re-exported)
from .runtime import CompiledNetwork
from .weights import attach_weights


def load(path, weights: bool = True) -> Network:
    """Read, validate and shape-check net.yaml; with weights=True also load and check its .npz."""
    net = build_graph(read_description(path))
    if weights:
        attach_weights(net)
    return net


def build(net: Network | str, target: str = "host") -> CompiledNetwork:
    """Compile for a target this machine runs, load with cffi, return a callable."""
    if not isinstance(net, Network):
        net = load(net)
    plan, files = compile_network(net, target)
    return CompiledNetwork(plan, files, load_module(net.name, files, plan.target))
