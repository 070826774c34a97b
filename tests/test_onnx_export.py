"""xnorgen export (contract v2, section 4): the exported model, run by onnxruntime, equals the
golden model; importing it gives back the same network (the binary weights as sign(W) * alpha)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import xnorgen
from netgen import random_dag_layers, random_network, write_net
from onnxgen import onnxruntime_outputs
from xnorgen.cli import main

onnx = pytest.importorskip("onnx")
from xnorgen.interop.onnx_export import export_onnx  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FIELDS = ("type", "mode", "kernel", "stride", "padding", "pad_value", "scale_input", "bias", "units", "filters",
          "global_", "eps")


def _save(net, path):
    onnx.save(export_onnx(net), str(path))
    return path


def _against_onnxruntime(net, path, rng):
    xs = rng.standard_normal((3, *net.input_shape)).astype(np.float32)
    ref = np.stack([np.asarray(xnorgen.reference(net, x)) for x in xs])
    got = onnxruntime_outputs(path, xs).reshape(ref.shape)
    tol = 1e-4 * max(1.0, float(np.abs(ref).max()))
    assert np.abs(got - ref).max() <= tol, (net.name, np.abs(got - ref).max(), tol)
    return xs, ref, tol


@pytest.mark.parametrize("example", ["digits/digits_xnor.yaml", "digits/digits_bwn.yaml",
                                     "digits/digits_float.yaml", "cifar_xnor.yaml"])
def test_examples_export_run_and_round_trip(tmp_path, example):
    net = xnorgen.load(EXAMPLES / example)
    path = _save(net, tmp_path / "m.onnx")
    xs, ref, tol = _against_onnxruntime(net, path, np.random.default_rng(1))
    back = xnorgen.load(path)
    assert [tuple(getattr(la, f, None) for f in FIELDS) for la in back.layers] == \
        [tuple(getattr(la, f, None) for f in FIELDS) for la in net.layers]
    again = np.stack([np.asarray(xnorgen.reference(back, x)) for x in xs])
    assert np.abs(again - ref).max() <= tol
    for a, b in zip(net.layers, back.layers):       # binary weights come back as sign(W) * alpha
        if getattr(a, "mode", "float") in ("bwn", "xnor"):
            w = a.params["weight"]
            alpha = np.abs(w).reshape(len(w), -1).mean(1) if a.scale_weight else np.ones(len(w))
            expect = np.where(w >= 0, 1.0, -1.0) * alpha.reshape((-1,) + (1,) * (w.ndim - 1))
            assert np.allclose(b.params["weight"], expect, rtol=1e-6)


def test_random_networks_export_to_what_onnxruntime_runs(tmp_path):
    for seed in range(3):
        rng = np.random.default_rng(40 + seed)
        net = xnorgen.load(random_network(tmp_path, f"r{seed}", rng))
        _against_onnxruntime(net, _save(net, tmp_path / f"r{seed}.onnx"), rng)
        shape = (int(rng.choice([1, 3, 8])), int(rng.integers(3, 8)), int(rng.integers(3, 8)))
        net = xnorgen.load(write_net(tmp_path, f"d{seed}", shape, random_dag_layers(rng, shape), rng))
        _against_onnxruntime(net, _save(net, tmp_path / f"d{seed}.onnx"), rng)


def test_cli_export(tmp_path):
    out = tmp_path / "m.onnx"
    ex = str(EXAMPLES / "digits" / "digits_xnor.yaml")
    r = CliRunner().invoke(main, ["export", ex, "-o", str(out)])
    assert r.exit_code == 0 and out.exists(), r.output
    r = CliRunner().invoke(main, ["export", ex, "-o", str(out)])
    assert r.exit_code == 2 and "refusing to overwrite" in r.output
    onnx.checker.check_model(onnx.load(str(out)))
