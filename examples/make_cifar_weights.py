"""Writes examples/cifar_xnor.npz: seeded random weights for the example description.

They are not trained (see examples/digits/ for trained networks); they exercise every
path of the compiler with realistic shapes. Rerun to regenerate the committed file.
"""
from pathlib import Path

import numpy as np

import xnorgen
from xnorgen.frontend.weights import random_weights

HERE = Path(__file__).parent


def main():
    net = xnorgen.load(HERE / "cifar_xnor.yaml", weights=False)
    arrays = random_weights(net, np.random.default_rng(2016), weight_scale=0.1)
    half = {k: v.astype(np.float16) for k, v in arrays.items()}     # half precision keeps the file small
    np.savez_compressed(HERE / "cifar_xnor.npz", **half)


if __name__ == "__main__":
    main()
