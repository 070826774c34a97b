"""Gradient checks for the trainer (xnorgen.training.ops) against central finite differences.

What each check means:
- float layers (conv2d, dense, batchnorm in train mode, relu, max/avg/global pools, add,
  flatten, softmax, cross-entropy): the backward pass is the exact gradient; checked on
  whole networks against finite differences of the loss, for the input and every parameter.
- binary layers: sign has no useful derivative, so Algorithm 1 *defines* a surrogate
  gradient. The checks build, in this file, the smooth surrogate whose exact gradient is
  that definition, around the current point (x0, W0):
      sign(x)  ~  sign(x0) + htanh(x) - htanh(x0)                 (STE: 1 where |x| <= 1)
      W~(W)    ~  W~(W0) + (W - W0)/n + alpha0*(htanh(W) - htanh(W0))   (the paper's dC/dW rule;
                                                                   no cross terms, as in the paper)
  K (xnor conv) and beta (xnor dense) stay exact functions of x. The surrogate equals the
  real forward at (x0, W0) (asserted), and its finite differences must equal the layer's
  backward. So these tests check that the backward implements Algorithm 1's definition
  and the exact K/beta/bias/upstream parts -- not that the definition is a true gradient.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest
import yaml

import xnorgen
from xnorgen.training import ops as train_ops
from xnorgen.training.ops import conv_fwd, sign
from xnorgen.training.trainer import Model


def _net(tmp_path, input_shape, layers, name="g"):
    doc = {"name": name, "input": {"shape": list(input_shape)}, "layers": layers}
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return xnorgen.load(p, weights=False)


def _randomize(model, rng):
    for op in model.ops.values():
        for k in op.params:
            op.params[k] = rng.standard_normal(op.params[k].shape) * (0.5 if k == "weight" else 1.0)


def _fd(f, a, idx, eps=1e-6):
    old = a[idx]
    a[idx] = old + eps
    up = f()
    a[idx] = old - eps
    down = f()
    a[idx] = old
    return (up - down) / (2 * eps)


def _check_model(model, x, y, rng, n_probe=12, rtol=1e-5):
    def loss():
        vals = model.forward(x, train=True)
        z = vals[model.logits].reshape(len(x), -1)
        z = z - z.max(axis=1, keepdims=True)
        return -(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))).mean()

    model.loss_and_backward(x, y)
    grads = {k: op.grads[p].copy() for k, op, p in model.parameters()}
    vals = model.forward(x, train=True)
    z = vals[model.logits].reshape(len(x), -1)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    dx = model.backward({model.logits: (p / len(y)).reshape(vals[model.logits].shape)})
    checked = 0
    for key, op, pname in model.parameters():
        a = op.params[pname]
        for flat in rng.choice(a.size, size=min(n_probe, a.size), replace=False):
            idx = np.unravel_index(flat, a.shape)
            num = _fd(loss, a, idx)
            assert abs(grads[key][idx] - num) <= rtol * max(1.0, abs(num)) + 1e-8, (key, idx, grads[key][idx], num)
            checked += 1
    for flat in rng.choice(x.size, size=n_probe, replace=False):
        idx = np.unravel_index(flat, x.shape)
        num = _fd(loss, x, idx)
        assert abs(dx[idx] - num) <= rtol * max(1.0, abs(num)) + 1e-8, ("input", idx, dx[idx], num)
    assert checked > 0


def test_float_network_gradients_match_finite_differences(tmp_path):
    rng = np.random.default_rng(1)
    net = _net(tmp_path, (3, 7, 6), [
        {"name": "c1", "type": "conv2d", "filters": 5, "kernel": [3, 2], "stride": [2, 1], "padding": 1,
         "bias": True, "pad_value": 1},
        {"name": "bn1", "type": "batchnorm"},
        {"name": "r1", "type": "relu"},
        {"name": "c2", "type": "conv2d", "filters": 5, "kernel": 3, "padding": "same"},
        {"name": "sum", "type": "add", "inputs": ["c2", "bn1"]},
        {"name": "mp", "type": "maxpool", "kernel": 2, "stride": 1, "padding": 1},
        {"name": "ap", "type": "avgpool", "kernel": 2, "padding": 1},
        {"name": "sm", "type": "softmax"},
        {"name": "gp", "type": "avgpool", "global": True},
        {"name": "fl", "type": "flatten"},
        {"name": "bn2", "type": "batchnorm"},
        {"name": "fc", "type": "dense", "units": 4, "bias": True},
        {"name": "prob", "type": "softmax"},
    ])
    model = Model(net, rng)
    _randomize(model, rng)
    x = rng.standard_normal((6, 3, 7, 6))
    _check_model(model, x, rng.integers(0, 4, 6), rng)


def test_dense_head_without_softmax_output(tmp_path):
    """Cross-entropy on a logits output (no softmax layer), dense on a [C,H,W] input."""
    rng = np.random.default_rng(2)
    net = _net(tmp_path, (2, 3, 3), [
        {"name": "fc1", "type": "dense", "units": 7},
        {"name": "bn", "type": "batchnorm"},
        {"name": "r", "type": "relu"},
        {"name": "fc2", "type": "dense", "units": 3, "bias": True},
    ])
    model = Model(net, rng)
    _randomize(model, rng)
    _check_model(model, rng.standard_normal((5, 2, 3, 3)), rng.integers(0, 3, 5), rng)


# ---- binary layers: the surrogate of Algorithm 1 ----

def htanh(x):
    return np.clip(x, -1.0, 1.0)


def _away_from_kinks(a, rng):
    """Resample entries within 1e-3 of 0 or +-1 so central differences do not straddle a kink."""
    bad = (np.abs(a) < 1e-3) | (np.abs(np.abs(a) - 1) < 1e-3)
    while bad.any():
        a[bad] = rng.uniform(-1.5, 1.5, bad.sum())
        bad = (np.abs(a) < 1e-3) | (np.abs(np.abs(a) - 1) < 1e-3)
    return a


def _layer_op(tmp_path, input_shape, spec, learn_alpha=False):
    net = _net(tmp_path, input_shape, [spec])
    return Model(net, learn_alpha=learn_alpha).ops[spec["name"]]


def _surrogate_weight(op, w, w0, alpha_param=None):
    """W~ around W0 under the paper's rule (or with a learned alpha)."""
    shape = (-1,) + (1,) * (w.ndim - 1)
    L = op.layer
    if alpha_param is not None:
        return alpha_param.reshape(shape) * sign(w0) + alpha_param.reshape(shape) * (htanh(w) - htanh(w0))
    if not L.scale_weight:
        return sign(w0) + htanh(w) - htanh(w0)
    a0 = np.abs(w0).reshape(len(w0), -1).mean(axis=1).reshape(shape)
    return a0 * sign(w0) + (w - w0) / w0[0].size + a0 * (htanh(w) - htanh(w0))


def _surrogate_conv(op, x, x0, w, w0, b, alpha_param=None):
    L = op.layer
    wt = _surrogate_weight(op, w, w0, alpha_param)
    if L.mode == "bwn":
        out, _ = conv_fwd(x, wt, L.stride, L.padding, L.pad_value)
    else:
        s = sign(x0) + htanh(x) - htanh(x0)
        # a padded tap of the binarized input is the constant pad_value
        out, _ = conv_fwd(s, wt, L.stride, L.padding, L.pad_value)
        if L.scale_input:
            kh, kw = L.kernel
            k, _ = conv_fwd(np.abs(x).mean(axis=1, keepdims=True), np.full((1, 1, kh, kw), 1 / (kh * kw)),
                            L.stride, L.padding, 0.0)
            out = out * k
    return out + (b[None, :, None, None] if b is not None else 0.0)


def _surrogate_dense(op, x, x0, w, w0, b, alpha_param=None):
    L = op.layer
    wt = _surrogate_weight(op, w, w0, alpha_param)
    xf, x0f = x.reshape(len(x), -1), x0.reshape(len(x0), -1)
    if L.mode == "bwn":
        out = xf @ wt.T
    else:
        s = sign(x0f) + htanh(xf) - htanh(x0f)
        out = s @ wt.T
        if L.scale_input:
            out = out * np.abs(xf).mean(axis=1, keepdims=True)
    return out + (b if b is not None else 0.0)


CONV_CASES = [
    dict(mode="xnor", filters=4, kernel=3, padding=1, bias=True),
    dict(mode="xnor", filters=3, kernel=[2, 3], stride=2, padding=[1, 0], pad_value=-1),
    dict(mode="xnor", filters=3, kernel=3, padding=1, pad_value=1, scale_input=False, scale_weight=False),
    dict(mode="bwn", filters=4, kernel=3, stride=[1, 2], padding=1, bias=True, pad_value=1),
    dict(mode="bwn", filters=2, kernel=2, scale_weight=False),
]
DENSE_CASES = [
    dict(mode="xnor", units=5, bias=True),
    dict(mode="xnor", units=4, scale_input=False),
    dict(mode="bwn", units=6, bias=True),
    dict(mode="bwn", units=3, scale_weight=False),
]


@pytest.mark.parametrize("learn_alpha", [False, True])
@pytest.mark.parametrize("kind,case", [("conv", c) for c in CONV_CASES] + [("dense", c) for c in DENSE_CASES])
def test_binary_layer_backward_is_the_algorithm1_surrogate_gradient(tmp_path, kind, case, learn_alpha):
    rng = np.random.default_rng(zlib.crc32(f"{kind}{case}{learn_alpha}".encode()))
    if kind == "conv":
        in_shape = (3, 5, 6)
        spec = dict(name="b", type="conv2d", **case)
        surrogate = _surrogate_conv
    else:
        in_shape = (2, 2, 3)
        spec = dict(name="b", type="dense", **case)
        surrogate = _surrogate_dense
    op = _layer_op(tmp_path, in_shape, spec, learn_alpha)
    w0 = _away_from_kinks(rng.uniform(-1.5, 1.5, op.params["weight"].shape), rng)
    op.params["weight"] = w0.copy()
    if "bias" in op.params:
        op.params["bias"] = rng.standard_normal(op.params["bias"].shape)
    if "alpha" in op.params:
        op.params["alpha"] = rng.uniform(0.2, 1.0, op.params["alpha"].shape)
    x0 = _away_from_kinks(rng.uniform(-1.6, 1.6, (3,) + in_shape), rng)

    out = op.forward([x0.copy()], train=True)
    w, x = w0.copy(), x0.copy()
    b = op.params.get("bias")
    a = op.params.get("alpha")
    a = None if a is None else a.copy()
    ref = surrogate(op, x, x0, w, w0, b, a)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)     # surrogate == real forward at the point

    g_up = rng.standard_normal(out.shape)
    (dx,) = op.backward(g_up)
    f = lambda: float((g_up * surrogate(op, x, x0, w, w0, b, a)).sum())  # noqa: E731
    for arr, got in [(x, dx), (w, op.grads["weight"])] + ([(a, op.grads["alpha"])] if a is not None else []) \
            + ([(b, op.grads["bias"])] if b is not None else []):
        for flat in rng.choice(arr.size, size=min(15, arr.size), replace=False):
            idx = np.unravel_index(flat, arr.shape)
            num = _fd(f, arr, idx, eps=1e-6)
            assert abs(got[idx] - num) <= 1e-6 * max(1.0, abs(num)), (idx, got[idx], num)


def test_sign_layer_is_straight_through(tmp_path):
    rng = np.random.default_rng(3)
    op = _layer_op(tmp_path, (4, 3, 3), {"name": "s", "type": "sign"})
    x0 = _away_from_kinks(rng.uniform(-2, 2, (2, 4, 3, 3)), rng)
    x0[0, 0, 0, 0] = 0.0                                  # sign(0) = +1 as in the contract
    out = op.forward([x0], train=True)
    assert out[0, 0, 0, 0] == 1.0 and set(np.unique(out)) == {-1.0, 1.0}
    g = rng.standard_normal(x0.shape)
    (dx,) = op.backward(g)
    x = x0.copy()
    f = lambda: float((g * (sign(x0) + htanh(x) - htanh(x0))).sum())  # noqa: E731
    for idx in zip(*np.nonzero(np.abs(x0) > 1e-3)):
        assert abs(dx[idx] - _fd(f, x, idx)) < 1e-7
    assert np.all(dx[np.abs(x0) > 1] == 0) and np.all(dx[np.abs(x0) <= 1] == g[np.abs(x0) <= 1])


def test_weight_rule_is_papers_formula():
    """dC/dW = dC/dW~ * (1/n + alpha * 1_{|W|<=1}) with n = C*kh*kw, alpha per filter, stated directly."""
    rng = np.random.default_rng(4)
    layer = xnorgen.frontend.description.Conv2d(name="c", type="conv2d", inputs=("input",), filters=3, kernel=(2, 2),
                                       mode="bwn", padding=(0, 0))
    op = train_ops.ConvOp(layer)
    w = rng.uniform(-2, 2, (3, 5, 2, 2))
    op.params["weight"] = w
    dwt = rng.standard_normal(w.shape)
    op.weight_grad(dwt)
    for f in range(3):
        alpha = np.abs(w[f]).mean()
        for idx in np.ndindex(w[f].shape):
            expect = dwt[f][idx] * (1 / 20 + (alpha if abs(w[f][idx]) <= 1 else 0.0))
            assert op.grads["weight"][f][idx] == pytest.approx(expect, rel=1e-12)
