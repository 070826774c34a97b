"""Front end: parsing, defaults, validation messages, graph pruning and shape inference."""
import numpy as np
import pytest

import xnorgen
from netgen import write_net
from xnorgen import XnorgenError


def _net(tmp_path, layers, shape=(3, 8, 8), **kw):
    return xnorgen.load(write_net(tmp_path, "t", shape, layers, **kw), weights=False)


def test_defaults_and_padding_forms(tmp_path):
    net = _net(tmp_path, [{"name": "a", "type": "conv2d", "filters": 4, "kernel": [3, 5], "padding": "same"},
                          {"name": "b", "type": "conv2d", "filters": 2, "kernel": 2, "stride": 2, "padding": "valid"},
                          {"name": "p", "type": "maxpool", "kernel": 2}])
    a, b, p = net.layer("a"), net.layer("b"), net.layer("p")
    assert (a.mode, a.stride, a.padding, a.bias, a.scale_weight, a.scale_input, a.pad_value) == \
        ("float", (1, 1), (1, 2), False, True, True, 0)
    assert net.shapes["a"] == (4, 8, 8) and b.padding == (0, 0) and net.shapes["b"] == (2, 4, 4)
    assert p.stride == (2, 2) and net.shapes["p"] == (2, 2, 2)


def test_output_size_formula_and_global_pool(tmp_path):
    net = _net(tmp_path, [{"name": "c", "type": "conv2d", "filters": 1, "kernel": [3, 2], "stride": [2, 3],
                           "padding": [1, 0]},
                          {"name": "g", "type": "avgpool", "global": True}, {"name": "f", "type": "flatten"},
                          {"name": "d", "type": "dense", "units": 5}], shape=(2, 9, 7))
    assert net.shapes["c"] == (1, (9 + 2 - 3) // 2 + 1, (7 - 2) // 3 + 1)
    assert net.shapes["g"] == (1, 1, 1) and net.shapes["f"] == (1,) and net.shapes["d"] == (5,)


def test_output_field_prunes_unused_layers(tmp_path):
    net = _net(tmp_path, [{"name": "a", "type": "relu"}, {"name": "b", "type": "sign"},
                          {"name": "c", "type": "relu", "inputs": ["a"]}], output="a")
    assert [layer.name for layer in net.layers] == ["a"] and net.output_shape == (3, 8, 8)


@pytest.mark.parametrize("layers,fragment", [
    ([{"name": "a", "type": "conv2d", "kernel": 3}], "missing required field 'filters'"),
    ([{"name": "a", "type": "conv2d", "filters": 2, "kernel": 3, "mode": "ternary"}], "mode must be one of"),
    ([{"name": "a", "type": "conv2d", "filters": 2, "kernel": 3, "pad_value": 2}], "pad_value must be 0, 1 or -1"),
    ([{"name": "a", "type": "conv2d", "filters": 2, "kernal": 3}], "unknown field(s) kernal"),
    ([{"name": "a", "type": "relu"}, {"name": "a", "type": "relu"}], "duplicate layer name"),
    ([{"name": "a", "type": "relu", "inputs": ["zz"]}], "input 'zz' is not a layer"),
    ([{"name": "a", "type": "relu", "inputs": ["b"]}, {"name": "b", "type": "relu", "inputs": ["a"]}], "cycle"),
    ([{"name": "a", "type": "maxpool", "kernel": 2, "padding": 2}], "padding 2 must be smaller than the kernel"),
    ([{"name": "a", "type": "flatten"}, {"name": "b", "type": "conv2d", "filters": 1, "kernel": 1}],
     "conv2d needs a [C, H, W] input"),
    ([{"name": "a", "type": "add"}], "add takes exactly two inputs"),
    ([{"name": "a", "type": "dense", "units": 0}], "expected an integer >= 1"),
    ([{"name": "input", "type": "relu"}], "'input' is reserved"),
])
def test_validation_errors_name_layer_and_problem(tmp_path, layers, fragment):
    with pytest.raises(XnorgenError) as e:
        _net(tmp_path, layers)
    assert fragment in str(e.value) and "t.yaml" in e.value.where


def test_weights_are_checked(tmp_path):
    layers = [{"name": "bn", "type": "batchnorm"}]
    var = -np.ones(3)
    path = write_net(tmp_path, "t", (3, 2, 2), layers, params={"bn.var": var})
    with pytest.raises(XnorgenError, match="negative variances"):
        xnorgen.load(path)
    path = write_net(tmp_path, "t", (3, 2, 2), layers, params={"bn.mean": np.array([0, np.nan, 0])})
    with pytest.raises(XnorgenError, match="NaN"):
        xnorgen.load(path)


def test_description_without_weights_file_loads_shapes_only(tmp_path):
    (tmp_path / "s.yaml").write_text("name: s\ninput: {shape: [3, 8, 8]}\nlayers:\n"
                                     "  - {name: c, type: conv2d, mode: xnor, filters: 8, kernel: 3}\n")
    net = xnorgen.load(tmp_path / "s.yaml", weights=False)
    assert net.output_shape == (8, 6, 6)
    with pytest.raises(XnorgenError, match="names no 'weights:' file"):
        xnorgen.load(tmp_path / "s.yaml")


def test_c_identifiers_are_sanitized_and_unique():
    from xnorgen.naming import unique_c_idents
    ids = unique_c_idents(["conv-1", "conv_1", "2x", "int"])
    assert ids == {"conv-1": "conv_1", "conv_1": "conv_1_1", "2x": "_2x", "int": "int_"}


@pytest.mark.parametrize("mode", ["float", "bwn"])
def test_pad_value_is_for_binarized_inputs_only(tmp_path, mode):
    """float and bwn convolutions zero-pad their real-valued input; pad_value warns and is dropped."""
    layer = {"name": "c", "type": "conv2d", "mode": mode, "filters": 2, "kernel": 3, "padding": 1, "pad_value": 1}
    with pytest.warns(UserWarning, match="pad_value applies to xnor layers only"):
        net = xnorgen.load(write_net(tmp_path, "pv", (3, 4, 4), [layer], np.random.default_rng(0)))
    assert net.layer("c").pad_value == 0
    x = np.ones((3, 4, 4))
    w = net.layer("c").params["weight"]
    w = np.sign(w + 0.0) * np.abs(w).reshape(2, -1).mean(axis=1)[:, None, None, None] if mode == "bwn" else w
    corner = (w[:, :, 1:, 1:]).sum(axis=(1, 2, 3))                     # only the in-bounds taps count
    np.testing.assert_allclose(xnorgen.reference(net, x)[:, 0, 0], corner, rtol=1e-12)
