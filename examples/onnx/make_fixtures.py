"""Models trained elsewhere, for `xnorgen import`: the script that made the .onnx files here.

    pip install torch brevitas onnx onnxscript onnxoptimizer scikit-learn
    python examples/onnx/make_fixtures.py

Not needed to use or test xnorgen (the outputs are checked in); it documents where they came from.
Both train briefly on scikit-learn's 8x8 digits, on the CPU, seeded:
- xnor_digits.onnx: a PyTorch XNOR-Net (float stem, then the paper's block BatchNorm -> BinActiv
  -> BinConv with K and alpha -> pool, a float classifier), exported by torch.onnx.export. Signs
  are torch.where(x >= 0, 1, -1) with a straight-through gradient (the contract's sign(0) = +1),
  the binary weights sign(W) * mean|W_f| are folded to constants by the exporter.
- brevitas_mlp.onnx: a Brevitas w1a1 MLP (binary weights with per-tensor scales, binary
  activations) exported to QONNX (BipolarQuant), the format FINN reads.
Beside each: <model>.x.npy (test digits) and <model>.y.npy (the framework's own outputs for them).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

HERE = Path(__file__).resolve().parent
torch.manual_seed(0)


class Sign(torch.autograd.Function):
    """sign(x) = +1 if x >= 0 else -1; straight-through gradient where |x| <= 1 (the paper's)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x.abs() <= 1).to(g.dtype)


class BinConv(torch.nn.Module):
    """The paper's BinActiv + BinConv: sign(I) conv sign(W), times alpha_f and K."""

    def __init__(self, c, f, k=3, pad=1):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(f, c, k, k) * 0.1)
        self.k, self.pad = k, pad

    def forward(self, x):
        a = x.abs().mean(dim=1, keepdim=True)
        kmap = torch.nn.functional.avg_pool2d(a, self.k, 1, self.pad, count_include_pad=True)
        alpha = self.w.abs().mean(dim=(1, 2, 3)).view(1, -1, 1, 1)
        wb = Sign.apply(self.w) * alpha.view(-1, 1, 1, 1)
        y = torch.nn.functional.conv2d(Sign.apply(x), wb, padding=self.pad)
        return y * kmap


class XnorDigits(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(16)
        self.bin2 = BinConv(16, 32)
        self.bn3 = torch.nn.BatchNorm2d(32)
        self.fc = torch.nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        x = self.bn1(self.stem(x))
        x = torch.nn.functional.max_pool2d(self.bin2(x), 2)
        return self.fc(torch.flatten(self.bn3(x), 1))


def digits():
    d = load_digits()
    x = (d.images / 16.0 - 0.5).astype(np.float32)
    return torch.tensor(x[:, None]), torch.tensor(d.target)


def train(model, x, y, epochs, lr):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    acc = (model(x).argmax(1) == y).float().mean().item()
    print(f"{type(model).__name__}: training accuracy {acc:.3f}")
    return model


def save_io(name, model, x):
    with torch.no_grad():
        y = model(x).numpy()
    np.save(HERE / f"{name}.x.npy", x.numpy())
    np.save(HERE / f"{name}.y.npy", y)


def xnor_fixture(x, y):
    model = train(XnorDigits(), x, y, epochs=8, lr=3e-3)
    torch.onnx.export(model, x[:1], str(HERE / "xnor_digits.onnx"), opset_version=13, dynamo=False,
                      input_names=["x"], output_names=["logits"], do_constant_folding=True)
    save_io("xnor_digits", model, x[:16])


def brevitas_fixture(x, y):
    import brevitas.nn as qnn
    from brevitas.export import export_qonnx
    from brevitas.quant import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst

    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.q0 = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
            self.fc1 = qnn.QuantLinear(64, 64, bias=False, weight_quant=SignedBinaryWeightPerTensorConst)
            self.bn1 = torch.nn.BatchNorm1d(64)
            self.q1 = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
            self.fc2 = qnn.QuantLinear(64, 10, bias=False, weight_quant=SignedBinaryWeightPerTensorConst)

        def forward(self, v):
            return self.fc2(self.q1(self.bn1(self.fc1(self.q0(v)))))

    flat = x.reshape(len(x), -1)
    model = train(MLP(), flat, y, epochs=10, lr=1e-2)
    path = HERE / "brevitas_mlp.onnx"
    export_qonnx(model, flat[:1], export_path=str(path))
    import onnx                            # the exporter keeps weights in a side file: put them inside
    onnx.save(onnx.load(str(path)), str(path), save_as_external_data=False)
    Path(str(path) + ".data").unlink(missing_ok=True)
    save_io("brevitas_mlp", model, flat[:16])


if __name__ == "__main__":
    x, y = digits()
    xnor_fixture(x, y)
    brevitas_fixture(x, y)
