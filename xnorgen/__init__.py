"""xnorgen: compile binarized (XNOR-Net / BWN) networks to plain-C XNOR-popcount libraries.

Pipeline, one module per stage:
description -> graph -> weights -> plan -> codegen -> build (cffi) / sim.
"""
from xnorgen.api import build, load, reference, simulate, train  # noqa: F401
from xnorgen.errors import XnorgenError  # noqa: F401

__version__ = "0.1.0"
