"""Training, part 2: data sets with a fixed, seeded train/test split.

`digits` is scikit-learn's bundled 8x8 handwritten digits (1797 images, values
0..16; needs the `train` extra: pip install 'xnorgen[train]'). Any .npz with
arrays X (samples first) and y (integer labels) works too.

Normalization: inputs are standardized with one scalar mean and standard
deviation computed on the training split only: x' = (x - mean) / std. The same
two numbers must be applied before calling the compiled library; they are in
Dataset.mean / Dataset.std (and `normalize`). The split does not depend on the
training seed, so every model is tested on the same held-out samples.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from pathlib import Path

import numpy as np

from xnorgen.errors import XnorgenError
from xnorgen.frontend.userfiles import NpzArrays

SPLIT_SEED = 20160316        # fixed: the split is the same for every training seed
TEST_FRACTION = 0.2


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray      # normalized, float64, [N, *input_shape]
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    mean: float
    std: float
    classes: int

    def normalize(self, x):
        return (np.asarray(x, dtype=np.float64) - self.mean) / self.std


def _raw(data):
    if str(data) == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise XnorgenError("--data digits", "needs scikit-learn: pip install 'xnorgen[train]'") from None
        d = load_digits()
        return "digits", d.data.astype(np.float64), d.target.astype(np.int64)
    path = Path(data)
    with NpzArrays(path, "data") as npz:      # headers checked before data, a regular file only
        if "X" not in npz.names or "y" not in npz.names:
            raise XnorgenError(str(path), f"expected arrays 'X' and 'y', found {', '.join(list(npz.names)[:8]) or 'none'}")
        x, y = npz.read("X"), npz.read("y")
    if len(x) != len(y) or y.ndim != 1 or len(x) < 2:
        raise XnorgenError(str(path), f"X has {len(x)} samples and y shape {list(y.shape)}; need one label per sample")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise XnorgenError(str(path), "y must hold non-negative integer class labels")
    return path.stem, x.astype(np.float64), y.astype(np.int64)


def load_dataset(data, input_shape, test_fraction=TEST_FRACTION) -> Dataset:
    """Load `digits` or an .npz, reshape X to the network input, split (seeded, stratified-free), normalize."""
    name, x, y = _raw(data)
    if prod(x.shape[1:]) != prod(input_shape):
        raise XnorgenError(f"data {name}", f"samples have shape {list(x.shape[1:])}, "
                           f"the network input is {list(input_shape)}")
    x = x.reshape((len(x),) + tuple(input_shape))
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    n_test = max(1, int(round(len(x) * test_fraction)))
    test, train = order[:n_test], order[n_test:]
    mean = float(x[train].mean())
    std = float(x[train].std()) or 1.0
    return Dataset(name, (x[train] - mean) / std, y[train], (x[test] - mean) / std, y[test],
                   mean, std, int(y.max()) + 1)
