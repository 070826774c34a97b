"""The command line: compile/run/targets, and one bad-input test per error class of
contract section 4 (exit 2, one `error: <where>: <what>` line, nothing half-written)."""
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from netgen import write_net

GOOD_LAYERS = [{"name": "conv", "type": "conv2d", "mode": "xnor", "filters": 4, "kernel": 3, "padding": 1},
               {"name": "flat", "type": "flatten"}, {"name": "fc", "type": "dense", "units": 3, "bias": True}]


def xnorgen_cli(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "xnorgen.cli", *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, cwd=cwd)


@pytest.fixture
def good_net(tmp_path):
    return write_net(tmp_path, "good", (5, 6, 6), GOOD_LAYERS)


def assert_user_error(r, *fragments):
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def _edit(path, fn):
    doc = yaml.safe_load(path.read_text())
    fn(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_help_for_every_command():
    for cmd in ([], ["compile"], ["run"], ["targets"], ["tune"]):
        r = xnorgen_cli(*cmd, "--help")
        assert r.returncode == 0 and "Usage" in r.stdout


def test_targets_lists_x86_64():
    r = xnorgen_cli("targets")
    assert r.returncode == 0 and "x86-64" in r.stdout and "popcount" in r.stdout


def test_compile_writes_library_sources(good_net, tmp_path):
    out = tmp_path / "out"
    r = xnorgen_cli("compile", good_net, "--target", "x86-64", "-o", out)
    assert r.returncode == 0, r.stderr
    assert {"good.h", "good.c", "good_weights.c", "good_weights.h", "Makefile", "manifest.json"} <= \
        {p.name for p in out.iterdir()}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]    # no temp dirs left


def test_run_matches_reference(good_net, tmp_path):
    import xnorgen
    x = np.random.default_rng(0).standard_normal((3, 5, 6, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = xnorgen_cli("run", good_net, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert r.returncode == 0, r.stderr
    want = xnorgen.reference(xnorgen.load(good_net), x)
    assert np.abs(np.load(tmp_path / "y.npy") - want).max() <= 1e-4 * max(1, np.abs(want).max())


# ---- one test per error class; each also checks that a previous output directory survives ----

def _compile_fails(net, tmp_path, *fragments, target="x86-64", env=None):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    (out / "manifest.json").write_text("{}")          # an earlier output must stay as it was
    r = xnorgen_cli("compile", net, "--target", target, "-o", out, env=env)
    assert_user_error(r, *fragments)
    assert [p.name for p in out.iterdir()] == ["manifest.json"] and (out / "manifest.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


def test_unreadable_yaml(good_net, tmp_path):
    good_net.write_text("name: good\nlayers: [ {name: a, type: relu\n")
    _compile_fails(good_net, tmp_path, "good.yaml", "invalid YAML")


def test_missing_file(tmp_path):
    _compile_fails(tmp_path / "nope.yaml", tmp_path, "nope.yaml", "cannot read")


def test_unknown_layer_type(good_net, tmp_path):
    _edit(good_net, lambda d: d["layers"][1].update(type="flatten3d"))
    _compile_fails(good_net, tmp_path, "layer flat", "unknown layer type 'flatten3d'")


def test_missing_array(good_net, tmp_path):
    arrays = dict(np.load(good_net.with_suffix(".npz")))
    del arrays["fc.bias"]
    np.savez(good_net.with_suffix(".npz"), **arrays)
    _compile_fails(good_net, tmp_path, "layer fc", "missing array 'fc.bias'")


def test_misshaped_array(good_net, tmp_path):
    arrays = dict(np.load(good_net.with_suffix(".npz")))
    arrays["conv.weight"] = np.zeros((4, 5, 3, 2), np.float32)
    np.savez(good_net.with_suffix(".npz"), **arrays)
    _compile_fails(good_net, tmp_path, "layer conv", "shape [4, 5, 3, 2], expected [4, 5, 3, 3]")


def test_shapes_that_do_not_fit(good_net, tmp_path):
    _edit(good_net, lambda d: d["layers"][0].update(kernel=9, padding=0))
    _compile_fails(good_net, tmp_path, "layer conv", "kernel 9 is larger than the padded input")


def test_add_of_different_shapes(good_net, tmp_path):
    _edit(good_net, lambda d: d["layers"].append({"name": "bad", "type": "add", "inputs": ["conv", "fc"]}))
    _compile_fails(good_net, tmp_path, "layer bad", "add inputs differ in shape")


def test_unknown_target(good_net, tmp_path):
    _compile_fails(good_net, tmp_path, "target riscv", "unknown target", target="riscv")


def _variant_target(tmp_path, fname, **fields):
    """A targets directory holding x86-64.yaml with `fields` changed, as <fname>; returns it."""
    from xnorgen.target import target_dirs
    tdir = tmp_path / "targets"
    tdir.mkdir()
    spec = yaml.safe_load((target_dirs()[0] / "x86-64.yaml").read_text())
    spec.update(fields)
    (tdir / fname).write_text(yaml.safe_dump(spec))
    return tdir


def test_missing_cross_compiler(good_net, tmp_path):
    tdir = _variant_target(tmp_path, "fake.yaml", name="fake-arm", cc="no-such-arm-gcc", arch=["fake"])
    _compile_fails(good_net, tmp_path, "target fake-arm", "no-such-arm-gcc", target="fake-arm",
                   env={"XNORGEN_TARGETS": str(tdir)})


@pytest.mark.parametrize("ports, what", [({"resources": {}}, "issue_width"),
                                         ({"issue_width": 4, "resources": {"vec": {"units": 0, "ops": {}}}}, "'vec'")])
def test_target_with_a_bad_ports_table(good_net, tmp_path, ports, what):
    tdir = _variant_target(tmp_path, "odd.yaml", name="odd", ports=ports)
    _compile_fails(good_net, tmp_path, str(tdir / "odd.yaml"), what, target="x86-64",
                   env={"XNORGEN_TARGETS": str(tdir)})


@pytest.mark.parametrize("value", [6, -4, "16"])
def test_target_with_a_bad_float_block(good_net, tmp_path, value):
    tdir = _variant_target(tmp_path, "odd.yaml", name="odd", float_block=value)
    _compile_fails(good_net, tmp_path, str(tdir / "odd.yaml"), "float_block", target="x86-64",
                   env={"XNORGEN_TARGETS": str(tdir)})


def test_run_with_wrong_input_shape(good_net, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 5, 6, 7), np.float32))
    r = xnorgen_cli("run", good_net, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert_user_error(r, "x.npy", "expected shape [5, 6, 6]")
    assert not (tmp_path / "y.npy").exists()


def test_compile_refuses_to_replace_a_foreign_directory(good_net, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    assert_user_error(xnorgen_cli("compile", good_net, "-o", out), "not an xnorgen output")
    assert (out / "thesis.tex").read_text() == "precious"


def test_no_fuse_keeps_batchnorm_tensors(tmp_path):
    import json
    layers = [{"name": "bn", "type": "batchnorm"}] + GOOD_LAYERS
    net = write_net(tmp_path, "bnnet", (5, 6, 6), layers)
    for flag, elided in (([], ["bn"]), (["--no-fuse"], [])):
        out = tmp_path / f"out{len(flag)}"
        r = xnorgen_cli("compile", net, "--target", "x86-64", "-o", out, *flag)
        assert r.returncode == 0, r.stderr
        assert json.loads((out / "manifest.json").read_text())["elided_tensors"] == elided


def test_warnings_are_one_line(tmp_path):
    layers = [{"name": "c", "type": "conv2d", "mode": "bwn", "filters": 2, "kernel": 3, "padding": 1, "pad_value": 1}]
    net = write_net(tmp_path, "pvw", (3, 4, 4), layers)
    r = xnorgen_cli("compile", net, "--target", "x86-64", "-o", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == f"warning: {net}: layer c: pad_value applies to xnor layers only; this bwn convolution zero-pads"


@pytest.mark.parametrize("field, value", [("cflags", ["-O2", "$(shell touch PWNED)"]), ("cc", "gcc; touch PWNED"),
                                          ("name", "x y")])
def test_target_tools_and_flags_are_plain_words(good_net, tmp_path, field, value):
    """A target file's tools and flags reach the Makefile and a command line: shell or make syntax is refused."""
    tdir = _variant_target(tmp_path, "odd.yaml", **{"name": "odd", field: value})
    _compile_fails(good_net, tmp_path, str(tdir / "odd.yaml"), field, target="x86-64",
                   env={"XNORGEN_TARGETS": str(tdir)})
    assert not (tmp_path / "PWNED").exists()
