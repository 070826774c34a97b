"""End to end on real data: the committed trained digits weights, compiled to C for the host,
agree with the golden model on the held-out digits (>= 99.5% of predictions, same accuracy),
and the trainer's own eval forward pass predicts exactly what the golden model predicts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import xnorgen
from xnorgen.training.data import load_dataset
from xnorgen.training.trainer import Model

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "digits"


@pytest.mark.parametrize("mode", ["float", "bwn", "xnor"])
def test_compiled_digits_net_agrees_with_golden_model(mode):
    pytest.importorskip("sklearn")
    net = xnorgen.load(EXAMPLES / f"digits_{mode}.yaml")
    data = load_dataset("digits", net.input_shape)
    x = data.x_test.astype(np.float32)
    ref = xnorgen.reference(net, x).reshape(len(x), -1)
    ref_pred = ref.argmax(axis=1)

    model = Model(net)
    model.load_arrays({f"{lay.name}.{p}": a for lay in net.layers for p, a in lay.params.items()})
    np.testing.assert_array_equal(model.predict(x.astype(np.float64)).argmax(axis=1), ref_pred)

    lib = xnorgen.build(net, target="host")
    c_pred = lib(x).reshape(len(x), -1).argmax(axis=1)
    agree = (c_pred == ref_pred).mean()
    ref_acc, c_acc = (ref_pred == data.y_test).mean(), (c_pred == data.y_test).mean()
    assert agree >= 0.995, f"C and golden model agree on only {agree:.4f}"
    assert c_acc == ref_acc
    assert ref_acc > 0.8, f"the committed {mode} weights look untrained: {ref_acc:.3f}"
