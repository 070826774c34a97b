"""The golden model against naive per-element loops written straight from contract section 2,
and against the public conformance cases (outputs of an independent implementation)."""
import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xnorgen
from netgen import write_net
from xnorgen.reference import binary_conv_core, input_scale_map

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"


def naive_conv(x, w, stride, pad, pad_value):
    """out[f,y,x] = sum over c, ky, kx of w * (input or pad_value outside)."""
    (c, h, wd), (f, _, kh, kw) = x.shape, w.shape
    ho, wo = (h + 2 * pad[0] - kh) // stride[0] + 1, (wd + 2 * pad[1] - kw) // stride[1] + 1
    out = np.zeros((f, ho, wo))
    for fi, oy, ox in itertools.product(range(f), range(ho), range(wo)):
        for ci, ky, kx in itertools.product(range(c), range(kh), range(kw)):
            iy, ix = oy * stride[0] - pad[0] + ky, ox * stride[1] - pad[1] + kx
            v = x[ci, iy, ix] if 0 <= iy < h and 0 <= ix < wd else pad_value
            out[fi, oy, ox] += w[fi, ci, ky, kx] * v
    return out


@pytest.mark.parametrize("pad_value", [0, 1, -1])
@pytest.mark.parametrize("shape,kernel,stride,pad", [((3, 4, 5), (3, 2), (2, 1), (1, 2)),
                                                    ((2, 2, 3), (5, 5), (1, 1), (2, 2)),
                                                    ((1, 5, 5), (1, 1), (2, 2), (0, 0))])
def test_binary_core_and_k_match_naive_loops(tmp_path, pad_value, shape, kernel, stride, pad):
    layer = {"name": "c", "type": "conv2d", "mode": "xnor", "filters": 3, "kernel": list(kernel),
             "stride": list(stride), "padding": list(pad), "pad_value": pad_value}
    net = xnorgen.load(write_net(tmp_path, "n", shape, [layer], np.random.default_rng(1)))
    lay = net.layer("c")
    x = np.random.default_rng(2).standard_normal(shape)
    x[0, 0, 0] = 0.0                                      # sign(0) = +1
    sx, sw = np.where(x >= 0, 1.0, -1.0), np.where(lay.params["weight"] >= 0, 1.0, -1.0)
    assert np.array_equal(binary_conv_core(lay, x), naive_conv(sx, sw, stride, pad, pad_value))
    a = np.abs(x).mean(axis=0)[None]
    box = np.full((1, 1, *kernel), 1.0 / (kernel[0] * kernel[1]))
    np.testing.assert_allclose(input_scale_map(lay, x), naive_conv(a, box, stride, pad, 0.0)[0], rtol=1e-12)


def test_xnor_layer_formula(tmp_path):
    layer = {"name": "c", "type": "conv2d", "mode": "xnor", "filters": 2, "kernel": 3, "padding": 1, "bias": True}
    net = xnorgen.load(write_net(tmp_path, "n", (4, 3, 3), [layer], np.random.default_rng(3)))
    lay, x = net.layer("c"), np.random.default_rng(4).standard_normal((4, 3, 3))
    w = lay.params["weight"]
    alpha = np.abs(w).reshape(2, -1).mean(axis=1)
    want = binary_conv_core(lay, x) * alpha[:, None, None] * input_scale_map(lay, x) + lay.params["bias"][:, None, None]
    np.testing.assert_allclose(xnorgen.reference(net, x), want, rtol=1e-12)


def test_pools_match_naive_loops(tmp_path):
    layers = [{"name": "m", "type": "maxpool", "kernel": 3, "stride": 2, "padding": 1},
              {"name": "a", "type": "avgpool", "kernel": 3, "stride": 2, "padding": 1, "inputs": ["input"]},
              {"name": "s", "type": "add", "inputs": ["m", "a"]}]
    net = xnorgen.load(write_net(tmp_path, "p", (2, 5, 4), layers), weights=False)
    x = np.random.default_rng(5).standard_normal((2, 5, 4))
    from xnorgen.reference import run_sample
    vals = run_sample(net, x)
    for name, fn, padv in (("m", np.max, -np.inf), ("a", lambda v: np.sum(v) / 9.0, 0.0)):
        out = vals[name]
        for c, oy, ox in itertools.product(range(2), range(out.shape[1]), range(out.shape[2])):
            win = [x[c, oy * 2 - 1 + i, ox * 2 - 1 + j] if 0 <= oy * 2 - 1 + i < 5 and 0 <= ox * 2 - 1 + j < 4
                   else padv for i in range(3) for j in range(3)]
            assert out[c, oy, ox] == pytest.approx(fn(np.array(win)))


def test_dense_xnor_uses_beta(tmp_path):
    layer = {"name": "d", "type": "dense", "mode": "xnor", "units": 3}
    net = xnorgen.load(write_net(tmp_path, "d", (2, 2, 2), [layer], np.random.default_rng(6)))
    x = np.random.default_rng(7).standard_normal((2, 2, 2))
    w = net.layer("d").params["weight"]
    want = (np.sign(w + 0.0) @ np.sign(x.reshape(-1))) * np.abs(w).mean(axis=1) * np.abs(x).mean()
    np.testing.assert_allclose(xnorgen.reference(net, x), want, rtol=1e-12)


@pytest.mark.skipif(not CONFORMANCE.exists(), reason="../shared/conformance not beside the clone")
def test_public_conformance_cases():
    r = subprocess.run([sys.executable, str(CONFORMANCE / "check.py")], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "conformance: all ok" in r.stdout
