"""The Python API of contract section 5: load, reference, build, simulate."""
from __future__ import annotations

from .description import read_description
from .graph import Network, build_graph
from .reference import reference  # noqa: F401  (re-exported)
from .weights import attach_weights


def load(path, weights: bool = True) -> Network:
    """Read, validate and shape-check net.yaml; with weights=True also load and check its .npz."""
    net = build_graph(read_description(path))
    if weights:
        attach_weights(net)
    return net
