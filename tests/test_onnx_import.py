"""xnorgen import (contract v2, section 4): ONNX / QONNX graphs built with onnx.helper, one per
pattern the importer reads, each imported and run by the golden model (and the C library)
against onnxruntime (standard ONNX) or a numpy evaluation of BipolarQuant (QONNX); and one per
refusal, each a single `error: MODEL.onnx: node <name> (<op>): <why>` line with exit status 2."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from click.testing import CliRunner

import xnorgen
from onnxgen import QONNX, G, bipolar_outputs, onnxruntime_outputs
from xnorgen.cli import main

RNG = np.random.default_rng(5)


def _xs(shape, n=3):
    return RNG.standard_normal((n, *shape)).astype(np.float32)


def _check(path, shape, expected_fn=onnxruntime_outputs, build=True):
    """Import path, run reference (and the host library) on random inputs, compare."""
    net = xnorgen.load(path)
    xs = _xs(shape)
    want = expected_fn(path, xs)
    ref = np.stack([np.asarray(xnorgen.reference(net, x)).reshape(want.shape[1:]) for x in xs])
    tol = 1e-4 * max(1.0, float(np.abs(want).max()))
    assert np.abs(ref - want).max() <= tol, (np.abs(ref - want).max(), tol)
    if build:
        got = np.asarray(xnorgen.build(net)(xs)).reshape(want.shape)
        assert np.abs(got - want).max() <= tol
    return net


def _types(net):
    return [(layer.type, getattr(layer, "mode", None)) for layer in net.layers]


def test_float_cnn(tmp_path):
    g = G([3, 9, 8])
    y = g.node("Conv", ["x", g.c(RNG.standard_normal((6, 3, 3, 3))), g.c(RNG.standard_normal(6))], pads=[1, 1, 1, 1])
    y = g.node("BatchNormalization", [y, g.c(RNG.uniform(0.5, 1.5, 6)), g.c(RNG.standard_normal(6)),
                                      g.c(RNG.standard_normal(6)), g.c(RNG.uniform(0.5, 2, 6))], epsilon=1e-3)
    y = g.node("Relu", [y])
    y = g.node("Dropout", [y])
    y = g.node("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])
    y = g.node("AveragePool", [y], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=1)
    y = g.node("Identity", [y])
    y = g.node("Flatten", [y], axis=1)
    w = g.node("Reshape", [g.c(RNG.standard_normal(5 * 96)), g.c([5, 96], np.int64)])   # a constant subgraph
    y = g.node("Gemm", [y, w, g.c(RNG.standard_normal(5))], transB=1)
    y = g.node("Softmax", [y], axis=-1)
    net = _check(g.save(tmp_path / "f.onnx", y, [5]), [3, 9, 8])
    assert [t for t, _ in _types(net)] == ["conv2d", "batchnorm", "relu", "maxpool", "avgpool", "flatten", "dense",
                                           "softmax"]


def test_matmul_add_global_pool_and_residual(tmp_path):
    g = G([4, 5, 5])
    a = g.node("Conv", ["x", g.c(RNG.standard_normal((4, 4, 3, 3)))], pads=[1, 1, 1, 1])
    y = g.node("Add", [a, "x"])
    y = g.node("GlobalAveragePool", [y])
    y = g.node("Flatten", [y])
    y = g.node("MatMul", [y, g.c(RNG.standard_normal((4, 3)))])
    y = g.node("Add", [y, g.c(RNG.standard_normal(3))])
    net = _check(g.save(tmp_path / "m.onnx", y, [3]), [4, 5, 5])
    assert ("add", None) in _types(net) and net.layers[-1].bias


def _xnor_block(g, x, c, f, k=(3, 3), pad=1, with_k=True, sign="Sign", scale_w=True, bias=True):
    """The paper's BinActiv + BinConv as a PyTorch export would spell it."""
    w = RNG.standard_normal((f, c, *k))
    sx = g.node("Sign", [x]) if sign == "Sign" else \
        g.node("Where", [g.node("GreaterOrEqual", [x, g.c(0.0)]), g.c(1.0), g.c(-1.0)])
    y = g.node("Conv", [sx, g.c(np.sign(w))], pads=[pad] * 4, kernel_shape=list(k))
    if scale_w:
        y = g.node("Mul", [y, g.c(np.abs(w).mean(axis=(1, 2, 3)).reshape(1, f, 1, 1))])
    if with_k:
        a = g.node("ReduceMean", [g.node("Abs", [x])], axes=[1], keepdims=1)
        kk = g.node("AveragePool", [a], kernel_shape=list(k), pads=[pad] * 4, count_include_pad=1)
        y = g.node("Mul", [y, kk])
    if bias:
        y = g.node("Add", [y, g.c(RNG.standard_normal((1, f, 1, 1)))])
    return y


def test_xnor_block_with_k_from_sign(tmp_path):
    g = G([5, 7, 6])
    y = _xnor_block(g, "x", 5, 8)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        net = _check(g.save(tmp_path / "x.onnx", y, [8, 7, 6]), [5, 7, 6])
    assert any("Sign(0)" in str(m.message) for m in w)
    conv = net.layers[0]
    assert (conv.mode, conv.scale_input, conv.bias, tuple(conv.padding)) == ("xnor", True, True, (1, 1))


def test_xnor_block_k_as_a_box_conv_and_where_sign(tmp_path):
    g = G([3, 6, 6])
    w = RNG.standard_normal((4, 3, 3, 3))
    sx = g.node("Where", [g.node("GreaterOrEqual", ["x", g.c(0.0)]), g.c(1.0), g.c(-1.0)])
    y = g.node("Conv", [sx, g.c(np.sign(w) * 0.5)], strides=[2, 2], pads=[1, 1, 1, 1])
    a = g.node("ReduceMean", [g.node("Abs", ["x"])], axes=[1], keepdims=1)
    kk = g.node("Conv", [a, g.c(np.full((1, 1, 3, 3), 1 / 9))], strides=[2, 2], pads=[1, 1, 1, 1])
    y = g.node("Mul", [kk, y])
    net = _check(g.save(tmp_path / "k.onnx", y, [4, 3, 3]), [3, 6, 6])
    assert net.layers[0].mode == "xnor" and net.layers[0].scale_input and tuple(net.layers[0].stride) == (2, 2)


def test_binary_weights_make_bwn(tmp_path):
    g = G([3, 5, 5])
    w = np.sign(RNG.standard_normal((4, 3, 3, 3))) * RNG.uniform(0.1, 2, (4, 1, 1, 1))     # +-a_f per filter
    y = g.node("Conv", ["x", g.c(w)], pads=[1, 1, 1, 1])
    net = _check(g.save(tmp_path / "b.onnx", y, [4, 5, 5]), [3, 5, 5])
    assert net.layers[0].mode == "bwn"


def test_qonnx_bipolar_conv_and_dense(tmp_path):
    g = G([3, 6, 6])
    qx = g.node("BipolarQuant", ["x", g.c(1.0)], domain=QONNX)
    qw = g.node("BipolarQuant", [g.c(RNG.standard_normal((8, 3, 3, 3))), g.c(RNG.uniform(0.2, 1, (8, 1, 1, 1)))],
                domain=QONNX)
    y = g.node("Conv", [qx, qw], pads=[1, 1, 1, 1])
    y = g.node("BatchNormalization", [y, g.c(RNG.uniform(0.5, 1.5, 8)), g.c(RNG.standard_normal(8)),
                                      g.c(RNG.standard_normal(8)), g.c(RNG.uniform(0.5, 2, 8))])
    y = g.node("Flatten", [y])
    qy = g.node("BipolarQuant", [y, g.c(0.5)], domain=QONNX)
    qw2 = g.node("BipolarQuant", [g.c(RNG.standard_normal((10, 288))), g.c(RNG.uniform(0.2, 1, (10, 1)))],
                 domain=QONNX)
    y = g.node("Gemm", [qy, qw2, g.c(RNG.standard_normal(10))], transB=1)
    path = g.save(tmp_path / "q.onnx", y, [10], qonnx=True)
    net = _check(path, [3, 6, 6], expected_fn=bipolar_outputs)
    assert _types(net) == [("conv2d", "xnor"), ("batchnorm", None), ("flatten", None), ("dense", "xnor")]


def test_sign_into_real_weights_is_a_sign_layer(tmp_path):
    g = G([2, 4, 4])
    y = g.node("Conv", [g.node("Sign", ["x"]), g.c(RNG.standard_normal((3, 2, 3, 3)))], pads=[1, 1, 1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = _check(g.save(tmp_path / "s.onnx", y, [3, 4, 4]), [2, 4, 4])
    assert _types(net) == [("sign", None), ("conv2d", "float")]


# ---------------------------------------------------------------- refusals

def _refused(tmp_path, g, out, out_shape, needle, **kw):
    path = g.save(tmp_path / "bad.onnx", out, out_shape, **kw)
    r = CliRunner().invoke(main, ["import", str(path), "-o", str(tmp_path / "bad.yaml")])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and str(path) in lines[0] and needle in lines[0], r.output
    assert not (tmp_path / "bad.yaml").exists() and not (tmp_path / "bad.npz").exists()


@pytest.mark.parametrize("attrs, needle", [
    ({"group": 2}, "(Conv): grouped"), ({"dilations": [2, 2]}, "(Conv): dilations"),
    ({"pads": [0, 0, 1, 1]}, "(Conv): asymmetric padding"),
])
def test_conv_refusals(tmp_path, attrs, needle):
    g = G([4, 6, 6])
    cin = 2 if "group" in attrs else 4
    y = g.node("Conv", ["x", g.c(RNG.standard_normal((4, cin, 3, 3)))], **attrs)
    _refused(tmp_path, g, y, [4, 4, 4], needle)


def test_operator_and_pattern_refusals(tmp_path):
    g = G([2, 4, 4])
    _refused(tmp_path, g, g.node("Tanh", ["x"], name="act"), [2, 4, 4], "node 'act' (Tanh): operator Tanh is not supported")
    g = G([2, 4, 4])
    y = g.node("MaxPool", ["x"], kernel_shape=[3, 3], ceil_mode=1)
    _refused(tmp_path, g, y, [2, 2, 2], "ceil_mode")
    g = G([2, 4, 4])
    y = g.node("AveragePool", ["x"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=0)
    _refused(tmp_path, g, y, [2, 4, 4], "count_include_pad")
    g = G([2, 4, 4])
    _refused(tmp_path, g, g.node("Softmax", ["x"], axis=1), [2, 4, 4], "flatten first")
    g = G([2, 4, 4])
    q = g.node("BipolarQuant", ["x", g.c(np.ones((1, 2, 1, 1)))], domain=QONNX)
    y = g.node("Conv", [q, g.c(np.sign(RNG.standard_normal((3, 2, 3, 3))))])
    _refused(tmp_path, g, y, [3, 2, 2], "per-channel scales", qonnx=True)
    g = G([3, 5, 5])
    y = _xnor_block(g, "x", 3, 4, with_k=False)           # bias, then K: the wrong order
    a = g.node("ReduceMean", [g.node("Abs", ["x"])], axes=[1], keepdims=1)
    y = g.node("Mul", [y, g.node("AveragePool", [a], kernel_shape=[3, 3], pads=[1] * 4, count_include_pad=1)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _refused(tmp_path, g, y, [4, 5, 5], "after the bias")
    g = G([3, 5, 5])
    y = _xnor_block(g, "x", 3, 4, with_k=False, bias=False)
    a = g.node("ReduceMean", [g.node("Abs", ["x"])], axes=[1], keepdims=1)
    y = g.node("Mul", [y, g.node("AveragePool", [a], kernel_shape=[2, 2], pads=[1] * 4, count_include_pad=1)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _refused(tmp_path, g, y, [4, 5, 5], "does not match")


def test_file_level_refusals(tmp_path):
    g = G([2, 4, 4])
    y = g.node("Relu", ["x"])
    _refused(tmp_path, g, y, [2, 4, 4], "opset 9", opset=9)
    bad = tmp_path / "junk.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not protobuf \xff\xff\xff")
    r = CliRunner().invoke(main, ["import", str(bad), "-o", str(tmp_path / "j.yaml")])
    assert r.exit_code == 2 and r.output.count("error:") == 1 and "junk.onnx" in r.output
    # weights kept in an external file: refused, the path is never opened
    g = G([2, 4, 4])
    y = g.node("Conv", ["x", g.c(RNG.standard_normal((2, 2, 1, 1)))])
    m = g.model(y, [2, 4, 4])
    t = m.graph.initializer[0]
    t.data_location = 1                                  # EXTERNAL
    del t.external_data[:]
    entry = t.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    t.ClearField("raw_data")
    path = tmp_path / "ext.onnx"
    path.write_bytes(m.SerializeToString())
    r = CliRunner().invoke(main, ["import", str(path), "-o", str(tmp_path / "e.yaml")])
    assert r.exit_code == 2 and "external file" in r.output, r.output


def _import_gemm(tmp_path, file_name: str):
    """A one-Gemm model saved as tmp_path/file_name, imported by the CLI to tmp_path/net.yaml:
    (model path, yaml path)."""
    g = G([4])
    y = g.node("Gemm", ["x", g.c(RNG.standard_normal((3, 4)))], transB=1)
    path = g.save(tmp_path / file_name, y, [3])
    out = tmp_path / "net.yaml"
    r = CliRunner().invoke(main, ["import", str(path), "-o", str(out)])
    assert r.exit_code == 0, r.output
    return path, out


def test_cli_import_writes_both_files_and_never_overwrites(tmp_path):
    path, out = _import_gemm(tmp_path, "d.onnx")
    assert out.exists() and (tmp_path / "net.npz").exists()
    net = xnorgen.load(out)
    x = _xs([4], 1)[0]
    assert np.allclose(xnorgen.reference(net, x), onnxruntime_outputs(path, x[None])[0], atol=1e-5)
    before = out.read_bytes()
    r = CliRunner().invoke(main, ["import", str(path), "-o", str(out)])
    assert r.exit_code == 2 and "refusing to overwrite" in r.output and out.read_bytes() == before
    assert CliRunner().invoke(main, ["import", str(path), "-o", str(out), "--force"]).exit_code == 0
    r = CliRunner().invoke(main, ["simulate", str(path), "--report", "cycles"])     # .onnx taken directly
    assert r.exit_code == 0, r.output


@pytest.mark.cross
def test_an_imported_qonnx_model_runs_on_the_emulated_cortex_m4(tmp_path):
    from xnorgen.api import run_on_target
    from xnorgen.target import resolve
    from xnorgen.toolchain import firmware
    if not firmware.can_run(resolve("cortex-m4")):
        pytest.skip("arm-none-eabi-gcc or qemu-system-arm not installed (.ci/run installs them)")
    g = G([3, 6, 6])
    qx = g.node("BipolarQuant", ["x", g.c(1.0)], domain=QONNX)
    qw = g.node("BipolarQuant", [g.c(RNG.standard_normal((8, 3, 3, 3))), g.c(RNG.uniform(0.2, 1, (8, 1, 1, 1)))],
                domain=QONNX)
    y = g.node("Flatten", [g.node("Conv", [qx, qw], pads=[1, 1, 1, 1])])
    qw2 = g.node("BipolarQuant", [g.c(RNG.standard_normal((10, 288))), g.c(RNG.uniform(0.2, 1, (10, 1)))], domain=QONNX)
    y = g.node("Gemm", [g.node("BipolarQuant", [y, g.c(1.0)], domain=QONNX), qw2], transB=1)
    path = g.save(tmp_path / "q.onnx", y, [10], qonnx=True)
    xs = _xs([3, 6, 6], 2)
    want = bipolar_outputs(path, xs)
    got = run_on_target(xnorgen.load(path), xs, "cortex-m4")
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, float(np.abs(want).max()))


def test_a_tensor_claiming_10_to_the_12_elements_is_refused_before_it_is_read(tmp_path):
    from onnx import TensorProto
    g = G([2, 4, 4])
    y = g.node("Conv", ["x", "huge"])
    m = g.model(y, [2, 4, 4])
    t = m.graph.initializer.add()                    # dims only: the header claims 4 TB
    t.name, t.data_type = "huge", TensorProto.FLOAT
    t.dims.extend([1_000_000, 1_000_000, 1, 1])
    path = tmp_path / "huge.onnx"
    path.write_bytes(m.SerializeToString())
    r = CliRunner().invoke(main, ["import", str(path), "-o", str(tmp_path / "h.yaml")])
    assert r.exit_code == 2 and "beyond the limit" in r.output, r.output


def test_a_dynamic_flatten_from_shape_folds(tmp_path):
    """PyTorch's x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""
    g = G([2, 3, 3])
    y = g.node("Relu", ["x"])
    n = g.node("Gather", [g.node("Shape", [y]), g.c(0, np.int64)], axis=0)
    shape = g.node("Concat", [g.node("Unsqueeze", [n, g.c([0], np.int64)]), g.c([-1], np.int64)], axis=0)
    y = g.node("Reshape", [y, shape])
    y = g.node("Gemm", [y, g.c(RNG.standard_normal((4, 18)))], transB=1)
    net = _check(g.save(tmp_path / "v.onnx", y, [4]), [2, 3, 3])
    assert [t for t, _ in _types(net)] == ["relu", "flatten", "dense"]


def test_a_hardtanh_before_the_sign_is_read_and_elsewhere_refused(tmp_path):
    """BNN code often clips (nn.Hardtanh) before the sign: sign(clip(x)) = sign(x)."""
    g = G([3, 5, 5])
    c = g.node("Clip", ["x", g.c(-1.0), g.c(1.0)])
    w = np.sign(RNG.standard_normal((4, 3, 3, 3)))
    y = g.node("Conv", [g.node("Where", [g.node("GreaterOrEqual", [c, g.c(0.0)]), g.c(1.0), g.c(-1.0)]), g.c(w)],
               pads=[1, 1, 1, 1])
    net = _check(g.save(tmp_path / "h.onnx", y, [4, 5, 5]), [3, 5, 5])
    assert net.layers[0].mode == "xnor"
    g = G([3, 5, 5])
    c = g.node("Clip", ["x", g.c(-1.0), g.c(1.0)])
    _refused(tmp_path, g, g.node("Relu", [c], name="after"), [3, 5, 5], "right before a sign")


def test_the_model_file_name_cannot_add_lines_to_the_description(tmp_path):
    _, out = _import_gemm(tmp_path, "m\nweights: other.npz\nx.onnx")
    text = out.read_text()
    assert text.count("\nweights:") == 1 and "weights: net.npz" in text
    xnorgen.load(out)
