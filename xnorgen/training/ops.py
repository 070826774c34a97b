"""Training, part 1: batched forward and backward of every layer kind (numpy, float64).

Needs: layers with shapes resolved (graph.build_graph) and parameters in op.params.
Guarantees: in eval mode, Op.forward on a batch equals xnorgen.reference on each
sample (contract section 2: sign(0)=+1, pad_value, K zero-padded, alpha per
filter, beta for xnor dense, batchnorm with the running mean/var).

Backward (Algorithm 1 of the XNOR-Net paper):
- a binary layer computes with W~ = alpha * sign(W), alpha = mean|W_f| (eq. 6).
  The gradient reaching the real-valued W is dC/dW = dC/dW~ * (1/n + alpha * 1_{|W|<=1})
  (the paper's rule; it omits the cross terms between weights of one filter).
  With scale_weight false, alpha = 1 and dC/dW = dC/dW~ * 1_{|W|<=1}.
  With a learned alpha (the Table 3a ablation), alpha_f is its own parameter:
  dC/dalpha_f = sum dC/dW~ * sign(W), dC/dW = dC/dW~ * alpha_f * 1_{|W|<=1}.
- sign of an input (xnor layers, sign layers) passes the gradient straight
  through where |x| <= 1 (the derivative of hardtanh), 0 elsewhere.
- the input scale K (xnor conv) and beta (xnor dense) are differentiated exactly:
  d|x|/dx = sign(x) with 0 at x = 0.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from xnorgen.frontend.description import Layer


def sign(x):
    """+1 where x >= 0 (sign(0) = +1), else -1 (the contract's sign)."""
    return np.where(x >= 0, 1.0, -1.0)


def ste(x):
    """The straight-through mask: 1 where |x| <= 1."""
    return (np.abs(x) <= 1.0).astype(np.float64)


# ---- batched convolution helpers: x [N,C,H,W], w [F,C,kh,kw] ----

def windows(x, kernel, stride, padding, pad_value=0.0):
    """[N,C,H,W] -> [N,C,Ho,Wo,kh,kw] views of the padded input."""
    (ph, pw), (sh, sw) = padding, stride
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    return sliding_window_view(xp, tuple(kernel), axis=(2, 3))[:, :, ::sh, ::sw]


def conv_fwd(x, w, stride, padding, pad_value=0.0):
    """Cross-correlation [N,C,H,W] * [F,C,kh,kw] -> [N,F,Ho,Wo]; also returns the windows."""
    win = windows(x, w.shape[2:], stride, padding, pad_value)
    out = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3]))        # [N,Ho,Wo,F]
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2)), win


def conv_dweight(dy, win):
    """dC/dw from dC/dout [N,F,Ho,Wo] and the forward windows."""
    return np.tensordot(dy, win, axes=([0, 2, 3], [0, 2, 3]))       # [F,C,kh,kw]


def conv_dinput(dy, w, in_shape, stride, padding):
    """dC/dx (padded taps are constants and get no gradient)."""
    n, c, h, wd = in_shape
    (ph, pw), (sh, sw) = padding, stride
    kh, kw = w.shape[2:]
    ho, wo = dy.shape[2:]
    cols = np.tensordot(dy, w, axes=([1], [0]))                      # [N,Ho,Wo,C,kh,kw]
    dxp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += cols[..., i, j].transpose(0, 3, 1, 2)
    return dxp[:, :, ph:ph + h, pw:pw + wd]


# ---- ops ----

class Op:
    """One layer: forward(ins, train) -> out; backward(dout) -> [d_in...]; grads by param name."""
    params: dict
    grads: dict

    def __init__(self, layer: Layer):
        self.layer, self.params, self.grads, self.buffers = layer, {}, {}, {}

    def forward(self, ins, train):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def export(self) -> dict:
        """The .npz arrays of this layer (contract names)."""
        return {k: v for k, v in {**self.params, **self.buffers}.items() if k not in ("alpha",)}


class WeightedOp(Op):
    """conv2d/dense: float, bwn or xnor, with Algorithm 1's weight binarization."""

    def __init__(self, layer, learn_alpha=False):
        super().__init__(layer)
        self.learn_alpha = learn_alpha and layer.mode != "float" and layer.scale_weight

    def effective_weight(self):
        """W~ = alpha * sign(W) for binary modes (alpha per filter/unit), W for float."""
        w = self.params["weight"]
        if self.layer.mode == "float":
            return w
        return sign(w) * self.alpha().reshape((-1,) + (1,) * (w.ndim - 1))

    def alpha(self):
        w = self.params["weight"]
        if self.learn_alpha:
            return self.params["alpha"]
        if not self.layer.scale_weight:
            return np.ones(w.shape[0])
        return np.abs(w).reshape(w.shape[0], -1).mean(axis=1)

    def weight_grad(self, dwt):
        """Algorithm 1: from dC/dW~ to the update direction of the real-valued W (and alpha)."""
        w = self.params["weight"]
        if self.layer.mode == "float":
            self.grads["weight"] = dwt
            return
        shape = (-1,) + (1,) * (w.ndim - 1)
        a = self.alpha().reshape(shape)
        if self.learn_alpha:
            self.grads["alpha"] = (dwt * sign(w)).reshape(w.shape[0], -1).sum(axis=1)
            self.grads["weight"] = dwt * a * ste(w)
        elif self.layer.scale_weight:
            n = w[0].size
            self.grads["weight"] = dwt * (1.0 / n + a * ste(w))
        else:
            self.grads["weight"] = dwt * ste(w)

    def export(self):
        out = super().export()
        if self.learn_alpha:
            # fold the learned alpha into W: sign(W') * mean|W'_f| = alpha_f * sign(W_f)
            w, a = self.params["weight"], self.params["alpha"]
            shape = (-1,) + (1,) * (w.ndim - 1)
            m = np.maximum(np.abs(w).reshape(w.shape[0], -1).mean(axis=1), 1e-12)
            out["weight"] = w * (a / m).reshape(shape)
        return out


class ConvOp(WeightedOp):
    def forward(self, ins, train):
        (x,) = ins
        L = self.layer
        wt = self.effective_weight()
        w = self.params["weight"]
        if L.mode == "float":
            out, win = conv_fwd(x, w, L.stride, L.padding, L.pad_value)
            self.cache = (x, win, None, None, wt)
        elif L.mode == "bwn":
            # conv with sign(W), then alpha: the reference's order of rounding
            out, win = conv_fwd(x, sign(w), L.stride, L.padding, L.pad_value)
            out = out * self.alpha()[None, :, None, None]
            self.cache = (x, win, None, None, wt)
        else:
            # the integer core conv(sign(I), sign(W)) is exact; alpha and K scale it afterwards
            core, win = conv_fwd(sign(x), sign(w), L.stride, L.padding, L.pad_value)
            core = core * self.alpha()[None, :, None, None]
            if L.scale_input:
                kh, kw = L.kernel
                a_map = np.abs(x).mean(axis=1, keepdims=True)
                box = np.full((1, 1, kh, kw), 1.0 / (kh * kw))
                k, _ = conv_fwd(a_map, box, L.stride, L.padding, 0.0)
            else:
                k = np.ones((1, 1) + core.shape[2:])
            out = core * k
            self.cache = (x, win, core, k, wt)
        if L.bias:
            out = out + self.params["bias"][None, :, None, None]
        return out

    def backward(self, dout):
        L = self.layer
        x, win, core, k, wt = self.cache
        if L.bias:
            self.grads["bias"] = dout.sum(axis=(0, 2, 3))
        if L.mode != "xnor":
            self.weight_grad(conv_dweight(dout, win))
            return [conv_dinput(dout, wt, x.shape, L.stride, L.padding)]
        dcore = dout * k
        self.weight_grad(conv_dweight(dcore, win))
        dx = conv_dinput(dcore, wt, x.shape, L.stride, L.padding) * ste(x)     # STE through sign(I)
        if L.scale_input:
            kh, kw = L.kernel
            dk = (dout * core).sum(axis=1, keepdims=True)                      # [N,1,Ho,Wo]
            box = np.full((1, 1, kh, kw), 1.0 / (kh * kw))
            da = conv_dinput(dk, box, (x.shape[0], 1) + x.shape[2:], L.stride, L.padding)
            dx = dx + da * np.sign(x) / x.shape[1]                             # A = mean_c |I|
        return [dx]


class DenseOp(WeightedOp):
    def forward(self, ins, train):
        (x,) = ins
        L = self.layer
        xf = x.reshape(len(x), -1)
        wt = self.effective_weight()
        w = self.params["weight"]
        if L.mode == "xnor":
            s = sign(xf)
            core = (s @ sign(w).T) * self.alpha()          # exact integer core, then alpha, then beta
            beta = np.abs(xf).mean(axis=1, keepdims=True) if L.scale_input else np.ones((len(xf), 1))
            out = core * beta
            self.cache = (x, s, core, beta, wt)
        else:
            out = xf @ w.T if L.mode == "float" else (xf @ sign(w).T) * self.alpha()
            self.cache = (x, xf, None, None, wt)
        if L.bias:
            out = out + self.params["bias"]
        return out

    def backward(self, dout):
        L = self.layer
        x, xin, core, beta, wt = self.cache
        if L.bias:
            self.grads["bias"] = dout.sum(axis=0)
        xf = x.reshape(len(x), -1)
        if L.mode != "xnor":
            self.weight_grad(dout.T @ xin)
            return [(dout @ wt).reshape(x.shape)]
        dcore = dout * beta
        self.weight_grad(dcore.T @ xin)
        dx = (dcore @ wt) * ste(xf)
        if L.scale_input:
            dbeta = (dout * core).sum(axis=1, keepdims=True)
            dx = dx + dbeta * np.sign(xf) / xf.shape[1]
        return [dx.reshape(x.shape)]


class BatchNormOp(Op):
    """Train mode: batch statistics (running mean/var updated); eval mode: running statistics."""
    momentum = 0.1

    def _axes(self, x):
        return (0,) if x.ndim == 2 else (0, 2, 3)

    def forward(self, ins, train):
        (x,) = ins
        shape = (1, -1) + (1,) * (x.ndim - 2)
        g, b = self.params["gamma"].reshape(shape), self.params["beta"].reshape(shape)
        if not train:
            scale = self.params["gamma"] / np.sqrt(self.buffers["var"] + self.layer.eps)
            return (x - self.buffers["mean"].reshape(shape)) * scale.reshape(shape) + b
        axes = self._axes(x)
        mu, var = x.mean(axis=axes), x.var(axis=axes)
        m = x.size // mu.size
        self.buffers["mean"] = (1 - self.momentum) * self.buffers["mean"] + self.momentum * mu
        self.buffers["var"] = (1 - self.momentum) * self.buffers["var"] + self.momentum * var * m / max(m - 1, 1)
        inv = 1.0 / np.sqrt(var + self.layer.eps)
        xhat = (x - mu.reshape(shape)) * inv.reshape(shape)
        self.cache = (xhat, inv.reshape(shape), g, axes)
        return xhat * g + b

    def backward(self, dout):
        xhat, inv, g, axes = self.cache
        self.grads["gamma"] = (dout * xhat).sum(axis=axes)
        self.grads["beta"] = dout.sum(axis=axes)
        dxhat = dout * g
        dx = inv * (dxhat - dxhat.mean(axis=axes, keepdims=True)
                    - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True))
        return [dx]


class PoolOp(Op):
    def forward(self, ins, train):
        (x,) = ins
        L = self.layer
        kh, kw = L.kernel
        if L.type == "maxpool":
            win = windows(x, L.kernel, L.stride, L.padding, -np.inf)
            flat = win.reshape(win.shape[:4] + (kh * kw,))
            arg = flat.argmax(axis=-1)
            self.cache = (x.shape, arg)
            return np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
        win = windows(x, L.kernel, L.stride, L.padding, 0.0)
        self.cache = (x.shape, None)
        return win.sum(axis=(4, 5)) / (kh * kw)

    def backward(self, dout):
        L = self.layer
        shape, arg = self.cache
        kh, kw = L.kernel
        (ph, pw), (sh, sw) = L.padding, L.stride
        n, c, h, w = shape
        ho, wo = dout.shape[2:]
        dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
        for i in range(kh):
            for j in range(kw):
                g = dout * (arg == i * kw + j) if arg is not None else dout / (kh * kw)
                dxp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += g
        return [dxp[:, :, ph:ph + h, pw:pw + w]]


class SimpleOp(Op):
    """relu, leaky_relu, sign (straight-through), flatten, softmax (over each sample's whole tensor), add."""

    def forward(self, ins, train):
        t = self.layer.type
        x = ins[0]
        self.cache = (x, None)
        if t == "add":
            return ins[0] + ins[1]
        if t == "relu":
            return np.maximum(x, 0.0)
        if t == "leaky_relu":
            return np.where(x >= 0, x, self.layer.slope * x)
        if t == "sign":
            return sign(x)
        if t == "flatten":
            return x.reshape(len(x), -1)
        z = x.reshape(len(x), -1)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        self.cache = (x, p)
        return p.reshape(x.shape)

    def backward(self, dout):
        t = self.layer.type
        x, p = self.cache
        if t == "add":
            return [dout, dout]
        if t == "relu":
            return [dout * (x > 0)]
        if t == "leaky_relu":
            return [dout * np.where(x >= 0, 1.0, self.layer.slope)]
        if t == "sign":
            return [dout * ste(x)]
        if t == "flatten":
            return [dout.reshape(x.shape)]
        d = dout.reshape(len(x), -1)
        return [(p * (d - (d * p).sum(axis=1, keepdims=True))).reshape(x.shape)]


#: The training op of each layer type (forward and backward of Algorithm 1).
OPS = {"conv2d": ConvOp, "dense": DenseOp, "batchnorm": lambda layer, learn_alpha: BatchNormOp(layer),
       "maxpool": lambda layer, learn_alpha: PoolOp(layer), "avgpool": lambda layer, learn_alpha: PoolOp(layer)}
SIMPLE = ("add", "relu", "leaky_relu", "sign", "flatten", "softmax")


def make_op(layer: Layer, learn_alpha=False) -> Op:
    if layer.type in SIMPLE:
        return SimpleOp(layer)
    if layer.type not in OPS:
        raise ValueError(f"no training op for layer type {layer.type}")
    return OPS[layer.type](layer, learn_alpha)
