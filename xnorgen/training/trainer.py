"""Training, part 3: the model, Algorithm 1's loop, optimizers, schedule, export.

Needs: a Network (api.load(path, weights=False) is enough) and a data set
(train_data.load_dataset).
Guarantees: deterministic for a seed (initialization and batch order come
from numpy's default_rng(seed)); the exported arrays are exactly the .npz the
description expects (contract names, shapes), and the trainer's eval-mode
forward pass equals xnorgen.reference on them.

Algorithm 1 per step: binarize (W~ = alpha*sign(W), inside the ops) -> forward
with batch statistics -> softmax cross-entropy -> backward (STE, scaled weight
gradient) -> update the real-valued weights with SGD+momentum (default when the
net has no xnor layer: float and BWN) or Adam (default with xnor layers); the
learning rate follows a cosine schedule from lr to 0 over all steps.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xnorgen.errors import XnorgenError
from xnorgen.frontend.graph import Network, expected_params
from xnorgen.training.ops import make_op


class Model:
    """The network's ops in topological order, with trainable params and BN buffers."""

    def __init__(self, net: Network, rng=None, learn_alpha=False):
        self.net = net
        self.ops = {layer.name: make_op(layer, learn_alpha) for layer in net.layers}
        rng = rng if rng is not None else np.random.default_rng(0)
        for layer in net.layers:
            op = self.ops[layer.name]
            for pname, shape in expected_params(layer, net.shapes[layer.inputs[0]]).items():
                if pname == "weight":
                    fan_in = int(np.prod(shape[1:]))
                    op.params["weight"] = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
                elif pname in ("bias", "beta"):
                    op.params[pname] = np.zeros(shape)
                elif pname == "gamma":
                    op.params[pname] = np.ones(shape)
                else:
                    op.buffers[pname] = np.zeros(shape) if pname == "mean" else np.ones(shape)
            if getattr(op, "learn_alpha", False):
                w = op.params["weight"]
                op.params["alpha"] = np.abs(w).reshape(w.shape[0], -1).mean(axis=1)
        out = net.layer(net.output)
        self.fused_softmax = out.type == "softmax"
        self.logits = out.inputs[0] if self.fused_softmax else net.output

    def load_arrays(self, arrays: dict):
        """Take parameters from {"layer.param": array} (e.g. a network's attached .npz)."""
        for name, op in self.ops.items():
            for pname in list(op.params) + list(op.buffers):
                key = f"{name}.{pname}"
                if key in arrays:
                    (op.params if pname in op.params else op.buffers)[pname] = np.array(arrays[key], dtype=np.float64)

    def forward(self, x, train=False):
        vals = {"input": x}
        for layer in self.net.layers:
            if train and self.fused_softmax and layer.name == self.net.output:
                continue
            vals[layer.name] = self.ops[layer.name].forward([vals[s] for s in layer.inputs], train)
        return vals

    def backward(self, grads: dict):
        """Backpropagate {tensor name: dC/dtensor} through the layers (reverse topological order)."""
        grads = dict(grads)
        for layer in reversed(self.net.layers):
            g = grads.pop(layer.name, None)
            if g is None:
                continue
            for src, d in zip(layer.inputs, self.ops[layer.name].backward(g)):
                grads[src] = grads[src] + d if src in grads else d
        return grads.get("input")

    def loss_and_backward(self, x, y):
        """Softmax cross-entropy (mean over the batch) on the logits; gradients land in op.grads."""
        vals = self.forward(x, train=True)
        z = vals[self.logits].reshape(len(x), -1)
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = -logp[np.arange(len(y)), y].mean()
        d = np.exp(logp)
        d[np.arange(len(y)), y] -= 1.0
        self.backward({self.logits: (d / len(y)).reshape(vals[self.logits].shape)})
        return loss, (z.argmax(axis=1) == y).mean()

    def predict(self, x, batch=256):
        outs = [self.forward(x[i:i + batch])[self.net.output] for i in range(0, len(x), batch)]
        return np.concatenate(outs).reshape(len(x), -1)

    def accuracy(self, x, y):
        return float((self.predict(x).argmax(axis=1) == y).mean())

    def parameters(self):
        """(key, array, grad-getter) for every trainable array."""
        return [(f"{n}.{p}", op, p) for n, op in self.ops.items() for p in op.params]

    def export(self) -> dict:
        """{"layer.param": float64 array} as the contract's .npz expects (learned alphas folded into W)."""
        return {f"{n}.{p}": a for n, op in self.ops.items() for p, a in op.export().items()}


class SGD:
    def __init__(self, momentum=0.9, weight_decay=5e-4):
        self.momentum, self.weight_decay, self.v = momentum, weight_decay, {}

    def step(self, model, lr):
        for key, op, p in model.parameters():
            g = op.grads[p]
            if p == "weight" and self.weight_decay:
                g = g + self.weight_decay * op.params[p]
            v = self.v[key] = self.momentum * self.v.get(key, 0.0) + g
            op.params[p] = op.params[p] - lr * v


class Adam:
    def __init__(self, b1=0.9, b2=0.999, eps=1e-8):
        self.b1, self.b2, self.eps, self.m, self.v, self.t = b1, b2, eps, {}, {}, 0

    def step(self, model, lr):
        self.t += 1
        for key, op, p in model.parameters():
            g = op.grads[p]
            m = self.m[key] = self.b1 * self.m.get(key, 0.0) + (1 - self.b1) * g
            v = self.v[key] = self.b2 * self.v.get(key, 0.0) + (1 - self.b2) * g * g
            mhat, vhat = m / (1 - self.b1 ** self.t), v / (1 - self.b2 ** self.t)
            op.params[p] = op.params[p] - lr * mhat / (np.sqrt(vhat) + self.eps)


def cosine_lr(lr0, step, total):
    return 0.5 * lr0 * (1.0 + np.cos(np.pi * step / max(total, 1)))


class Progress:
    """A text progress bar on stderr: redrawn in place on a terminal, one line per epoch otherwise."""

    def __init__(self, name, epochs, steps, stream=None, enabled=True):
        self.name, self.epochs, self.steps = name, epochs, steps
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()

    def _line(self, epoch, step, info):
        done = int(20 * step / self.steps)
        return f"{self.name} epoch {epoch:>3}/{self.epochs} |{'#' * done}{'.' * (20 - done)}| {step}/{self.steps} {info}"

    def update(self, epoch, step, info):
        if self.tty:
            self.stream.write("\r" + self._line(epoch, step, info))
            self.stream.flush()

    def end_epoch(self, epoch, info):
        if self.enabled:
            self.stream.write(("\r" if self.tty else "") + self._line(epoch, self.steps, info) + "\n")
            self.stream.flush()


@dataclass
class TrainResult:
    net: Network
    weights: dict                       # "layer.param" -> float64 array (what save_weights writes)
    dataset: object
    seed: int
    epochs: int
    optimizer: str
    test_accuracy: float
    train_accuracy: float
    seconds: float
    history: list = field(default_factory=list)
    model: Model | None = None


def default_optimizer(net: Network) -> str:
    return "adam" if any(getattr(lay, "mode", "float") == "xnor" for lay in net.layers) else "sgd"


def fit(net: Network, dataset, *, epochs=30, seed=0, batch_size=64, lr=None, optimizer="auto",
        learn_alpha=False, progress=True, stream=None) -> TrainResult:
    """Train from scratch with Algorithm 1; returns the exported weights and the measured accuracies."""
    if not any(lay.type in ("conv2d", "dense") for lay in net.layers):
        raise XnorgenError(str(net.path or net.name), "nothing to train: no conv2d or dense layer")
    out_size = int(np.prod(net.shapes[net.output]))
    if out_size < dataset.classes:
        raise XnorgenError(str(net.path or net.name), f"the output has {out_size} values but the data has "
                           f"{dataset.classes} classes")
    rng = np.random.default_rng(seed)
    model = Model(net, rng, learn_alpha)
    optimizer = default_optimizer(net) if optimizer == "auto" else optimizer
    opt = {"sgd": SGD, "adam": Adam}[optimizer]()
    lr = lr if lr is not None else {"sgd": 0.05, "adam": 0.003}[optimizer]
    n = len(dataset.x_train)
    steps = (n + batch_size - 1) // batch_size
    bar = Progress(net.name, epochs, steps, stream, progress)
    history, t0, step = [], time.perf_counter(), 0
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        losses, accs = [], []
        for b in range(steps):
            idx = order[b * batch_size:(b + 1) * batch_size]
            loss, acc = model.loss_and_backward(dataset.x_train[idx], dataset.y_train[idx])
            opt.step(model, cosine_lr(lr, step, epochs * steps))
            step += 1
            losses.append(loss)
            accs.append(acc)
            bar.update(epoch, b + 1, f"loss {np.mean(losses):.4f}")
        test_acc = model.accuracy(dataset.x_test, dataset.y_test)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "train_batch_acc": float(np.mean(accs)),
                        "test_acc": test_acc})
        bar.end_epoch(epoch, f"loss {np.mean(losses):.4f} train {100 * np.mean(accs):.1f}% "
                             f"test {100 * test_acc:.1f}% {time.perf_counter() - t0:.0f}s")
    seconds = time.perf_counter() - t0
    return TrainResult(net, model.export(), dataset, seed, epochs, optimizer,
                       model.accuracy(dataset.x_test, dataset.y_test),
                       model.accuracy(dataset.x_train, dataset.y_train), seconds, history, model)


def save_weights(path, weights: dict):
    """Write the .npz (float32, atomically). A negative weight that would round to -0/0 is kept negative."""
    arrays = {}
    for key, a in weights.items():
        a32 = a.astype(np.float32)
        tiny = (a < 0) & (a32 >= 0)
        a32[tiny] = -np.finfo(np.float32).tiny
        arrays[key] = a32
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent.resolve())
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)          # mkstemp makes 0600; an .npz is an ordinary file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
