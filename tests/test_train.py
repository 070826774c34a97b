"""The trainer: same semantics as the golden model, export, determinism, data, CLI. Fast (tiny data)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import xnorgen
from netgen import random_input, random_network
from xnorgen.cli import main as cli
from xnorgen.errors import XnorgenError
from xnorgen.frontend.graph import expected_params
from xnorgen.training.data import load_dataset
from xnorgen.training.trainer import Model, fit, save_weights

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "digits"


def _params_of(net):
    return {f"{lay.name}.{p}": a for lay in net.layers for p, a in lay.params.items()}


def _set_params(net, arrays):
    """What attach_weights does, from in-memory float64 arrays (no float32 rounding)."""
    for lay in net.layers:
        for p in expected_params(lay, net.shapes[lay.inputs[0]]):
            lay.params[p] = np.asarray(arrays[f"{lay.name}.{p}"], dtype=np.float64)


def _synthetic(tmp_path, n=120, shape=(1, 8, 8), classes=3, seed=0):
    """A learnable toy set: class c has a bright blob in a class-specific place."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(0, 0.3, (n,) + shape)
    for i, c in enumerate(y):
        x[i, :, 2 * c:2 * c + 3, 1:5] += 2.0
    p = tmp_path / "toy.npz"
    np.savez(p, X=x.reshape(n, -1), y=y)
    return p


@pytest.mark.parametrize("seed", range(6))
def test_eval_forward_equals_reference_on_random_networks(tmp_path, seed):
    """Trainer eval mode == xnorgen.reference (pad_value, K, alpha, beta, add, pools, softmax)."""
    rng = np.random.default_rng(seed)
    path = random_network(tmp_path, f"r{seed}", rng)
    net = xnorgen.load(path)
    model = Model(net)
    model.load_arrays(_params_of(net))
    x = random_input(net, rng, batch=5).astype(np.float64)
    x[0].flat[:3] = 0.0                                  # sign(0) = +1 paths
    np.testing.assert_allclose(model.predict(x), xnorgen.reference(net, x).reshape(5, -1), rtol=1e-9, atol=1e-12)


def _variants(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("ablations", EXAMPLES / "ablations.py")
    ab = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ab)
    out = []
    for doc in [ab.base("float"), ab.base("bwn"), ab.base("xnor"), ab.cbap(ab.base("xnor")), ab.no_k(ab.base("xnor"))]:
        p = tmp_path / f"{doc['name']}.yaml"
        p.write_text(yaml.safe_dump(dict(doc, weights=f"{doc['name']}.npz"), sort_keys=False))
        out.append(p)
    return out


@pytest.mark.parametrize("learn_alpha", [False, True])
def test_trained_example_nets_export_weights_the_reference_agrees_with(tmp_path, learn_alpha):
    """After a few real steps (BN running stats, learned alpha folded into W) reference == trainer."""
    data = load_dataset(_synthetic(tmp_path, n=60), (1, 8, 8))
    for path in _variants(tmp_path):
        net = xnorgen.load(path, weights=False)
        r = fit(net, data, epochs=1, seed=3, batch_size=16, learn_alpha=learn_alpha, progress=False)
        _set_params(net, r.weights)
        assert all(lay.params or lay.type not in ("conv2d", "dense", "batchnorm") for lay in net.layers)
        np.testing.assert_allclose(r.model.predict(data.x_test), xnorgen.reference(net, data.x_test),
                                   rtol=1e-9, atol=1e-12)
        conv2 = r.model.ops["conv2"]
        if learn_alpha and conv2.layer.mode != "float":
            eq6 = np.abs(conv2.params["weight"]).reshape(64, -1).mean(axis=1)
            assert not np.allclose(conv2.params["alpha"], eq6)   # alpha really is its own parameter


def test_saved_npz_loads_and_matches_within_float32_rounding(tmp_path):
    data = load_dataset(_synthetic(tmp_path, n=40), (1, 8, 8))
    src = yaml.safe_load((EXAMPLES / "digits_xnor.yaml").read_text())
    yml = tmp_path / "n.yaml"
    yml.write_text(yaml.safe_dump(dict(src, weights="n.npz"), sort_keys=False))
    r = fit(xnorgen.load(yml, weights=False), data, epochs=1, seed=0, batch_size=8, progress=False)
    r.weights["conv2.weight"].flat[0] = -1e-50            # would round to -0.0 in float32: must stay negative
    r.model.ops["conv2"].params["weight"].flat[0] = -1e-50
    save_weights(tmp_path / "n.npz", r.weights)
    net = xnorgen.load(yml)
    assert net.layer("conv2").params["weight"].flat[0] < 0
    ref = xnorgen.reference(net, data.x_test)
    got = r.model.predict(data.x_test)
    np.testing.assert_allclose(ref, got, rtol=1e-4, atol=1e-5)


def test_training_is_deterministic_for_a_seed_and_learns(tmp_path):
    data = load_dataset(_synthetic(tmp_path), (1, 8, 8))
    net = xnorgen.load(EXAMPLES / "digits_xnor.yaml", weights=False)
    a = fit(net, data, epochs=3, seed=7, batch_size=16, progress=False)
    b = fit(net, data, epochs=3, seed=7, batch_size=16, progress=False)
    c = fit(net, data, epochs=1, seed=8, batch_size=16, progress=False)
    assert a.weights.keys() == b.weights.keys()
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert not np.array_equal(a.weights["conv2.weight"], c.weights["conv2.weight"])
    losses = [h["loss"] for h in a.history]
    assert losses[-1] < losses[0] and a.train_accuracy > 0.9       # 3 classes: chance is 1/3
    assert a.optimizer == "adam"
    assert fit(xnorgen.load(EXAMPLES / "digits_bwn.yaml", weights=False), data, epochs=1,
               progress=False).optimizer == "sgd"


def test_progress_bar_one_line_per_epoch_off_a_terminal(tmp_path):
    data = load_dataset(_synthetic(tmp_path, n=30), (1, 8, 8))
    net = xnorgen.load(EXAMPLES / "digits_bwn.yaml", weights=False)
    s = io.StringIO()
    fit(net, data, epochs=2, seed=0, batch_size=8, stream=s)
    lines = s.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("digits_bwn epoch   2/2 |####################| 3/3 loss")


def test_dataset_split_is_fixed_disjoint_and_normalized_on_train(tmp_path):
    p = _synthetic(tmp_path, n=50)
    d1, d2 = load_dataset(p, (64,)), load_dataset(p, (1, 8, 8))
    assert len(d1.x_test) == 10 and len(d1.x_train) == 40 and d2.x_train.shape == (40, 1, 8, 8)
    np.testing.assert_array_equal(d1.x_test.reshape(10, -1), d2.x_test.reshape(10, -1))
    raw = np.load(p)["X"]
    tr = {tuple(np.round(r, 9)) for r in d1.x_train * d1.std + d1.mean}
    te = {tuple(np.round(r, 9)) for r in d1.x_test * d1.std + d1.mean}
    assert not tr & te and len(tr | te) == len({tuple(np.round(r, 9)) for r in raw})
    assert abs(d1.x_train.mean()) < 1e-12 and abs(d1.x_train.std() - 1) < 1e-12
    np.testing.assert_allclose(d1.normalize(raw[:3]), (raw[:3] - d1.mean) / d1.std)


def test_dataset_errors(tmp_path):
    np.savez(tmp_path / "bad.npz", X=np.zeros((4, 64)))
    with pytest.raises(XnorgenError, match="expected arrays 'X' and 'y'"):
        load_dataset(tmp_path / "bad.npz", (64,))
    with pytest.raises(XnorgenError, match="network input"):
        load_dataset(_synthetic(tmp_path, n=10), (1, 7, 7))
    with pytest.raises(XnorgenError, match="cannot read"):
        load_dataset(tmp_path / "missing.npz", (64,))


def test_digits_dataset_when_scikit_learn_is_installed():
    pytest.importorskip("sklearn")
    d = load_dataset("digits", (1, 8, 8))
    assert len(d.y_test) + len(d.y_train) == 1797 and len(d.y_test) == 359 and d.classes == 10


def test_cli_train_writes_weights_and_reports(tmp_path):
    data = _synthetic(tmp_path, n=40)
    src = yaml.safe_load((EXAMPLES / "digits_bwn.yaml").read_text())
    yml = tmp_path / "m.yaml"
    yml.write_text(yaml.safe_dump(dict(src, weights="m.npz"), sort_keys=False))
    res = CliRunner().invoke(cli, ["train", str(yml), "--data", str(data), "-e", "1", "-q", "--batch-size", "8",
                                   "-o", str(tmp_path / "m.npz")])
    assert res.exit_code == 0, res.output
    assert "test accuracy" in res.output and (tmp_path / "m.npz").exists()
    net = xnorgen.load(yml)                                 # the written .npz passes the loader's checks
    assert net.layer("conv2").params["weight"].shape == (64, 32, 3, 3)
    out = tmp_path / "other.npz"
    res = CliRunner().invoke(cli, ["train", str(yml), "--data", str(data), "-e", "1", "-q", "--learn-alpha",
                                   "-o", str(out)])
    assert res.exit_code == 0 and out.exists()


def test_cli_train_user_errors_exit_2(tmp_path):
    src = yaml.safe_load((EXAMPLES / "digits_bwn.yaml").read_text())
    yml = tmp_path / "m.yaml"
    yml.write_text(yaml.safe_dump(dict(src, weights="m.npz"), sort_keys=False))
    res = CliRunner().invoke(cli, ["train", str(yml), "--data", str(tmp_path / "nope.npz"), "-q",
                                   "-o", str(tmp_path / "m.npz")])
    assert res.exit_code == 2 and res.output.startswith("error: ") and "nope.npz" in res.output
    assert not (tmp_path / "m.npz").exists()


def test_cli_train_never_writes_where_the_description_points(tmp_path):
    """Contract section 7: `weights: ../victim/precious.txt` in a stranger's net.yaml is not a
    place train writes to; without -o it is a one-line usage error and nothing is written."""
    victim = tmp_path / "victim" / "precious.txt"
    victim.parent.mkdir()
    victim.write_text("keep me")
    src = yaml.safe_load((EXAMPLES / "digits_bwn.yaml").read_text())
    yml = tmp_path / "net" / "m.yaml"
    yml.parent.mkdir()
    yml.write_text(yaml.safe_dump(dict(src, weights="../victim/precious.txt"), sort_keys=False))
    res = CliRunner().invoke(cli, ["train", str(yml), "--data", str(_synthetic(tmp_path, n=10)), "-q"])
    assert res.exit_code == 2 and res.output.startswith("error: ") and "'-o'" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert victim.read_text() == "keep me" and sorted(p.name for p in yml.parent.iterdir()) == ["m.yaml"]
