"""xnorgen/tune.py and `xnorgen tune`: knobs timed on this machine, outputs unchanged, the choice
written as a target that builds and is recorded in manifest.json."""
import json
from dataclasses import replace

import numpy as np
import pytest

import xnorgen
from netgen import write_net
from test_cli import assert_user_error, xnorgen_cli
from xnorgen.target import resolve, runs_here
from xnorgen.tune import candidate_values, tune

LAYERS = [{"name": "c1", "type": "conv2d", "mode": "xnor", "filters": 24, "kernel": 3, "padding": 1},
          {"name": "bn", "type": "batchnorm"},
          {"name": "c2", "type": "conv2d", "mode": "xnor", "filters": 16, "kernel": 3, "stride": 2, "padding": 1},
          {"name": "flat", "type": "flatten"}, {"name": "fc", "type": "dense", "mode": "xnor", "units": 5}]


def test_candidates_keep_knobs_a_target_leaves_off():
    t = resolve("x86-64")
    assert candidate_values(t, "pixel_lanes") == [0] and candidate_values(t, "stream_prefetch") == [0]
    assert candidate_values(t, "float_block") == [0]
    wide = replace(t, pixel_lanes=16, stream_prefetch=4096, block_prefetch=2, filter_block=16, float_block=8)
    assert candidate_values(wide, "pixel_lanes") == [0, 16] and candidate_values(wide, "float_block") == [0, 8]
    assert candidate_values(wide, "stream_prefetch") == [0, 2048, 4096, 8192]
    assert candidate_values(wide, "filter_block") == [8, 16, 32]
    assert candidate_values(wide, "block_prefetch") == [0, 1, 2, 4]


def test_tune_times_what_changes_and_keeps_outputs(tmp_path):
    host = resolve("host")
    net = xnorgen.load(write_net(tmp_path, "t", (64, 10, 10), LAYERS))
    messages = []
    r = tune(net, host, reps=3, progress=messages.append)
    timed = [t for t in r.trials if not t[3]]
    assert timed and all(t[2] > 0 for t in timed)
    assert any(m.startswith("tune t: filter_block in") for m in messages)
    # the chosen knobs are the tuned target's, and its build computes what the default one does
    assert {k: getattr(r.target, k) for k in r.knobs} == r.knobs
    assert r.target.tuned["network"] == "t" and r.target.tuned["knobs"] == r.knobs
    x = np.random.default_rng(1).standard_normal(net.input_shape).astype(np.float32)
    np.testing.assert_array_equal(xnorgen.build(net, r.target)(x), xnorgen.build(net, host)(x))


@pytest.mark.skipif(not runs_here(resolve("host")), reason="no native target")
def test_cli_tune_writes_a_target_that_compiles(tmp_path):
    path = write_net(tmp_path, "t", (64, 10, 10), LAYERS)
    out = tmp_path / "tuned"
    r = xnorgen_cli("tune", path, "--reps", "3", "-o", out)
    assert r.returncode == 0, r.stderr
    host = resolve("host").name
    written = out / f"{host}-t.yaml"
    assert written.exists() and f"wrote {written}" in r.stdout
    c = xnorgen_cli("compile", path, "-t", f"{host}-t", "-o", tmp_path / "lib", env={"XNORGEN_TARGETS": str(out)})
    assert c.returncode == 0, c.stderr
    m = json.loads((tmp_path / "lib" / "manifest.json").read_text())
    assert m["target"] == f"{host}-t" and m["tuned"]["network"] == "t"
    assert m["target_knobs"] == m["tuned"]["knobs"]
    # `host` still resolves to the shipped target with the tuned one on the path
    h = xnorgen_cli("compile", path, "-o", tmp_path / "lib2", env={"XNORGEN_TARGETS": str(out)})
    assert h.returncode == 0 and json.loads((tmp_path / "lib2" / "manifest.json").read_text())["target"] == host


def test_cli_tune_without_weights_is_a_user_error(tmp_path):
    p = tmp_path / "n.yaml"
    p.write_text("name: n\ninput: {shape: [8]}\nlayers:\n- {name: fc, type: dense, mode: xnor, units: 4}\n")
    assert_user_error(xnorgen_cli("tune", p, "-o", tmp_path / "o"), str(p), "weights")
    assert not (tmp_path / "o").exists()
