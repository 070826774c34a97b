"""Writes examples/cifar_xnor.npz: seeded random weights for the example description.

They are not trained (see examples/digits/ for trained networks); they exercise every
path of the compiler with realistic shapes. Rerun to regenerate the committed file.
"""
from pathlib import Path

import numpy as np

import xnorgen
from xnorgen.graph import expected_params

HERE = Path(__file__).parent


def main():
    net = xnorgen.load(HERE / "cifar_xnor.yaml", weights=False)
    rng = np.random.default_rng(2016)
    arrays = {}
    for layer in net.layers:
        for pname, shape in expected_params(layer, net.shapes[layer.inputs[0]]).items():
            if pname == "var":
                a = rng.uniform(0.5, 2.0, shape)
            elif pname == "gamma":
                a = rng.uniform(0.5, 1.5, shape)
            else:
                a = rng.standard_normal(shape) * (0.1 if pname == "weight" else 1.0)
            arrays[f"{layer.name}.{pname}"] = a.astype(np.float16)   # half precision keeps the file small
    np.savez_compressed(HERE / "cifar_xnor.npz", **arrays)


if __name__ == "__main__":
    main()
