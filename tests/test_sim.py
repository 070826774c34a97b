"""The simulator (issue 3): paper model, memory report, and the target model's bit-exactness with the C."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import xnorgen
from netgen import random_input, random_network, write_net
from xnorgen.cli import main
from xnorgen.plan.core import plan_network
from xnorgen.reference import binary_conv_core
from xnorgen.sim.machine import run_plan
from xnorgen.sim.paper import speedup, sweep_channels, sweep_kernel
from xnorgen.target import resolve

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_paper_speedup_is_6227():
    assert f"{speedup(256, 3 * 3):.2f}" == "62.27"


def test_speedup_report_of_one_layer_gives_6227(tmp_path):
    p = write_net(tmp_path, "one", (256, 14, 14), [{"name": "c", "type": "conv2d", "mode": "xnor", "filters": 8,
                                                    "kernel": 3, "padding": 1}])
    rep = xnorgen.simulate(p, target="x86-64", report="speedup")
    (layer,) = rep["layers"]
    assert (layer["c"], layer["N_W"], layer["N_I"]) == (256, 9, 196)
    assert round(layer["speedup"], 2) == 62.27 and round(rep["total"]["speedup"], 2) == 62.27


def test_figure_4b_4c_points():
    ch = {p["c"]: p["speedup"] for p in sweep_channels()}
    ks = {p["kernel"]: p["speedup"] for p in sweep_kernel()}
    assert round(ch[256], 2) == 62.27 and round(ch[64], 2) == 57.60 and round(ch[1], 2) == 7.89
    assert round(ks[1], 2) == 51.20 and round(ks[3], 2) == 62.27 and round(ks[5], 2) == 63.37
    s = [ch[c] for c in sorted(ch)]
    assert all(a < b < 64 for a, b in zip(s, s[1:]))          # saturates towards 64, as in the figure


def test_float_layers_count_in_both_columns(tmp_path):
    p = write_net(tmp_path, "mix", (3, 8, 8), [
        {"name": "f", "type": "conv2d", "filters": 64, "kernel": 3, "padding": 1},
        {"name": "b", "type": "conv2d", "mode": "xnor", "filters": 64, "kernel": 3, "padding": 1}])
    rep = xnorgen.simulate(p, target="x86-64", report="speedup")
    f, b = rep["layers"]
    assert f["float_clocks"] == f["binary_clocks"] == 3 * 9 * 64 * 64
    assert rep["total"]["binary_clocks"] == f["float_clocks"] + b["binary_clocks"]
    assert 1 < rep["total"]["speedup"] < b["speedup"]


@pytest.mark.parametrize("net", ["alexnet", "resnet18", "vgg19"])
def test_memory_reproduces_figure_4a_ratio(net):
    """Fig. 4(a): double precision vs binary is ~64x (32x vs float32) when every layer is binary."""
    rep = xnorgen.simulate(EXAMPLES / f"{net}.yaml", target="x86-64", report="memory")
    t = rep["total"]
    assert t["float64"] == 2 * t["float32"] == 8 * t["params"]
    assert 58 < t["ratio_float64_all_binary"] < 64
    assert 10 < t["ratio_float64_packed"] < t["ratio_float64_all_binary"]   # float first/last layers cost
    assert rep["arena"]["bytes"] <= rep["arena"]["without_reuse"]


def test_resnet18_counts_only_is_fast():
    t0 = time.perf_counter()
    rep = xnorgen.simulate(EXAMPLES / "resnet18.yaml", target="x86-64", report="cycles")
    assert time.perf_counter() - t0 < 5
    assert rep["total"]["cycles"] == round(sum(layer["cycles"] for layer in rep["layers"]) or 0) or \
        abs(rep["total"]["cycles"] - sum(layer["cycles"] for layer in rep["layers"])) <= len(rep["layers"])
    assert rep["total"]["ops"]["popcount"] > 0


CORE_CASES = [  # (channels, h, w, filters, kernel, stride, padding, pad_value)
    (1, 5, 6, 3, [3, 3], 1, 1, 0), (63, 7, 5, 5, [3, 2], 2, 1, 1), (65, 6, 6, 4, [1, 3], 1, [0, 1], -1),
    (130, 5, 5, 3, [3, 3], 2, 2, 0), (64, 4, 4, 2, [5, 5], 1, 1, 1), (7, 3, 3, 2, [5, 4], 1, 2, -1),
    (65, 4, 3, 2, [5, 1], 1, [1, 0], 0),
]


@pytest.mark.parametrize("c,h,w,f,k,s,p,pv", CORE_CASES)
def test_integer_core_sim_equals_c_equals_reference(tmp_path, c, h, w, f, k, s, p, pv):
    """Scales and bias off: the output is the integer core, so all three paths must agree exactly."""
    layer = {"name": "x", "type": "conv2d", "mode": "xnor", "filters": f, "kernel": k, "stride": s,
             "padding": p, "pad_value": pv, "scale_weight": False, "scale_input": False}
    net = xnorgen.load(write_net(tmp_path, "core", (c, h, w), [layer], np.random.default_rng(c)))
    x = random_input(net, np.random.default_rng(1))
    sim = run_plan(plan_network(net, resolve("x86-64")), x).output
    c_out = xnorgen.build(net, "x86-64")(x)
    ref = binary_conv_core(net.layers[0], x.astype(np.float64))
    assert np.array_equal(sim, c_out) and np.array_equal(sim, ref)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_whole_random_network_sim_bit_exact_with_c(tmp_path, seed):
    """Every float32 operation in the C's order: the pre-softmax output is bit-identical,
    for the fused plan (what the C runs) and the unfused one (fuse=False)."""
    rng = np.random.default_rng(seed)
    net = xnorgen.load(random_network(tmp_path, f"r{seed}", rng, output="fc"))
    x = random_input(net, rng)
    c_out = xnorgen.build(net, "x86-64")(x)
    for fuse in (True, False):
        sim = run_plan(plan_network(net, resolve("x86-64"), fuse=fuse), x).output
        assert np.array_equal(sim, c_out), fuse
    np.testing.assert_allclose(sim, xnorgen.reference(net, x), rtol=1e-4, atol=1e-4 * np.abs(sim).max())


@pytest.mark.parametrize("target", ["host", "x86-64"])
@pytest.mark.parametrize("n", [5, 100, 4099])
def test_dense_beta_sim_bit_exact_with_c(tmp_path, target, n):
    """An xnor dense layer's beta = mean |x| in its fixed order (tiling.SUM_LANES partial sums,
    added pairwise), AVX-512 and portable: simulator == C bit for bit. The inputs spread over
    eight decades, so a different summation order rounds differently."""
    layer = {"name": "fc", "type": "dense", "mode": "xnor", "units": 7}
    net = xnorgen.load(write_net(tmp_path, "b", (n,), [layer], np.random.default_rng(n)))
    rng = np.random.default_rng(n + 1)
    x = (rng.standard_normal((3, n)) * 10.0 ** rng.uniform(-4, 4, (3, n))).astype(np.float32)
    c_out = xnorgen.build(net, target)(x)
    plan = plan_network(net, resolve(target))
    for sample, want in zip(x, c_out):
        assert np.array_equal(run_plan(plan, sample).output, want)


def test_next_block_prefetch_with_fused_epilogues_sim_bit_exact_with_c(tmp_path):
    """Convs that prefetch the next block's weights (few pixels, many channels) while binarizing
    the next input in their epilogue, or adding a residual: simulator == C bit for bit on the host
    (a prefetch instruction on avx512, none elsewhere)."""
    import dataclasses
    t = dataclasses.replace(resolve("host"), block_prefetch=1)
    layers = [
        {"name": "c1", "type": "conv2d", "mode": "xnor", "filters": 200, "kernel": 3, "padding": 1},
        {"name": "bn1", "type": "batchnorm"},
        {"name": "c2", "type": "conv2d", "mode": "xnor", "filters": 200, "kernel": 3, "padding": 1, "pad_value": -1},
        {"name": "c3", "type": "conv2d", "mode": "xnor", "filters": 200, "kernel": 3, "padding": 1, "inputs": ["bn1"]},
        {"name": "sum", "type": "add", "inputs": ["c2", "c3"]},
    ]
    rng = np.random.default_rng(9)
    net = xnorgen.load(write_net(tmp_path, "pf", (130, 5, 4), layers, rng))
    plan = plan_network(net, t)
    by = {lp.layer.name: lp for lp in plan.layers}
    assert by["c1"].binarize_out and by["c3"].epilogue == ["sum"]
    assert all(by[c].tiling.next_block_prefetch for c in ("c1", "c2", "c3"))
    x = random_input(net, rng)
    assert np.array_equal(run_plan(plan, x).output, xnorgen.build(net, t)(x))


def fused_chain(tmp_path, name, rng):
    """A network that exercises every fusion: a folded batchnorm stage before the first xnor conv,
    two xnor convs that binarize the next input in their epilogue (one for two readers), odd
    channel counts, pad values, strides, an xnor dense head."""
    f1, f2 = int(rng.choice([31, 64, 65])), int(rng.choice([8, 63, 70]))
    pv = int(rng.choice([0, 1, -1]))
    layers = [
        {"name": "stem", "type": "conv2d", "mode": str(rng.choice(["float", "bwn"])), "filters": int(rng.choice([5, 16])),
         "kernel": 3, "padding": 1},
        {"name": "bn1", "type": "batchnorm"},
        {"name": "x1", "type": "conv2d", "mode": "xnor", "filters": f1, "kernel": 3, "padding": 1, "pad_value": pv,
         "bias": bool(rng.integers(2))},
        {"name": "bn2", "type": "batchnorm"},
        {"name": "x2", "type": "conv2d", "mode": "xnor", "filters": f2, "kernel": [3, 2], "padding": [1, 0],
         "stride": int(rng.choice([1, 2])), "scale_input": bool(rng.integers(2))},
        {"name": "bn3", "type": "batchnorm"},
        {"name": "x3", "type": "conv2d", "mode": "xnor", "filters": 12, "kernel": 1, "inputs": ["bn3"]},
        {"name": "x4", "type": "conv2d", "mode": "xnor", "filters": 12, "kernel": 1, "inputs": ["bn3"],
         "scale_weight": False},
        {"name": "sum", "type": "add", "inputs": ["x3", "x4"]},
        {"name": "flat", "type": "flatten"},
        {"name": "fc1", "type": "dense", "mode": "xnor", "units": 20},
        {"name": "fc", "type": "dense", "units": 10, "bias": True},
    ]
    return write_net(tmp_path, name, (int(rng.choice([3, 7])), int(rng.integers(6, 12)), int(rng.integers(6, 12))),
                     layers, rng)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fused_chain_sim_bit_exact_with_c(tmp_path, seed):
    """Stages, folded batchnorms and epilogue stages: simulator == C bit for bit, fused and unfused."""
    rng = np.random.default_rng(100 + seed)
    net = xnorgen.load(fused_chain(tmp_path, f"f{seed}", rng))
    plan = plan_network(net, resolve("x86-64"))
    by = {lp.layer.name: lp for lp in plan.layers}
    assert by["x1"].binarize_out and by["x2"].binarize_out and by["bn2"].folded_into and by["bn1"].folded_into
    x = random_input(net, rng)
    c_out = xnorgen.build(net, "x86-64")(x)
    for fuse in (True, False):
        run = run_plan(plan_network(net, resolve("x86-64"), fuse=fuse), x)
        assert np.array_equal(run.output, c_out), fuse
    np.testing.assert_allclose(c_out, xnorgen.reference(net, x), rtol=1e-4, atol=1e-4 * np.abs(c_out).max())


def test_fusion_costs(tmp_path):
    """A folded batchnorm costs nothing; a stage's pack/A work is counted once for its two readers;
    fusing saves the float stores of the elided tensors (the epilogue's per-value read-modify-write
    of the packed word is not vectorized, so loads need not drop: the C does that too)."""
    net = xnorgen.load(fused_chain(tmp_path, "fc0", np.random.default_rng(5)), weights=False)
    t = resolve("x86-64")
    fused, unfused = run_plan(plan_network(net, t)), run_plan(plan_network(net, t, fuse=False))
    rows = {r.name: r for r in fused.layers}
    assert sum(rows[b].counts.total() for b in ("bn1", "bn2", "bn3")) == 0
    stages = [r for r in fused.layers if r.type == "binarize"]
    assert [r.name for r in stages] == ["bin_bn1"]                     # the others run in epilogues
    assert sum(r.type == "binarize" for r in unfused.layers) == 3      # one per tensor, shared by x3 and x4
    assert fused.total_counts["store"] < unfused.total_counts["store"]
    unf = {r.name: r for r in unfused.layers}
    assert unf["bn2"].counts["store"] > 0 and rows["x1"].counts["store"] < unf["x1"].counts["store"] + unf["bn2"].counts["store"]


def test_functional_and_counts_only_agree(tmp_path):
    rng = np.random.default_rng(7)
    net = xnorgen.load(random_network(tmp_path, "r7", rng))
    plan = plan_network(net, resolve("x86-64"))
    full, counts_only = run_plan(plan, random_input(net, rng)), run_plan(plan)
    assert [r.counts for r in full.layers] == [r.counts for r in counts_only.layers]
    assert counts_only.output is None and full.output is not None
    net2 = xnorgen.load(fused_chain(tmp_path, "fc7", rng))
    plan2 = plan_network(net2, resolve("x86-64-avx512"))
    full, counts_only = run_plan(plan2, random_input(net2, rng)), run_plan(plan2)
    assert [r.counts for r in full.layers] == [r.counts for r in counts_only.layers]


def test_predict_fills_manifest_including_stages(tmp_path):
    from xnorgen.api import compile_network
    net = xnorgen.load(fused_chain(tmp_path, "fm", np.random.default_rng(3)))
    plan, files = compile_network(net, "x86-64")
    man = json.loads(files["manifest.json"])
    by = {layer["name"]: layer["predicted"] for layer in man["layers"]}
    assert by["x1"]["stages"] == ["bin_bn1"] and by["bn1"]["instructions"] == 0
    total = xnorgen.simulate(net, target="x86-64", report="cycles")["total"]
    assert sum(p["instructions"] for p in by.values()) == total["instructions"]


def test_swar_target_expands_popcount(tmp_path):
    import dataclasses
    p = write_net(tmp_path, "one", (64, 6, 6), [{"name": "c", "type": "conv2d", "mode": "xnor", "filters": 4,
                                                 "kernel": 3}])
    net = xnorgen.load(p, weights=False)
    t = resolve("x86-64")
    hw, sw = run_plan(plan_network(net, t)), run_plan(plan_network(net, dataclasses.replace(t, popcount="swar")))
    conv_hw, conv_sw = (next(r for r in run.layers if r.name == "c") for run in (hw, sw))
    words = conv_hw.counts["popcount"]
    assert words == 4 * 16 * 9 and "popcount" not in conv_sw.counts      # 4 filter lanes x 16 outputs x 9 taps
    assert conv_sw.counts["mul"] == words and sw.total_cycles > hw.total_cycles


def test_simd_target_counts_one_vector_op_per_filter_block(tmp_path):
    """AVX-512: one vpopcntq covers the XG_FB = 8 filters of a block; x86-64: one popcnt per filter."""
    p = write_net(tmp_path, "one", (64, 6, 6), [{"name": "c", "type": "conv2d", "mode": "xnor", "filters": 16,
                                                 "kernel": 3}])
    net = xnorgen.load(p, weights=False)
    scalar = next(r for r in run_plan(plan_network(net, resolve("x86-64"))).layers if r.name == "c")
    vec = next(r for r in run_plan(plan_network(net, resolve("x86-64-avx512"))).layers if r.name == "c")
    assert scalar.counts["popcount"] == 16 * 16 * 9 and "vpopcount" not in scalar.counts
    assert vec.counts["vpopcount"] == 2 * 16 * 9 and "popcount" not in vec.counts


def test_cli_simulate_reports_without_weights(tmp_path):
    r = CliRunner().invoke(main, ["simulate", str(EXAMPLES / "alexnet.yaml"), "-t", "x86-64", "--report", "speedup",
                                  "--format", "json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["report"] == "speedup" and rep["total"]["binary_layers_speedup"] > 50
    r = CliRunner().invoke(main, ["simulate", str(EXAMPLES / "vgg19.yaml"), "-t", "x86-64", "--report", "memory"])
    assert r.exit_code == 0 and "float64/all-binary" in r.output
    r = CliRunner().invoke(main, ["simulate", "--sweep", "kernel"])
    assert r.exit_code == 0 and "62.27" in r.output


def test_cli_simulate_errors_are_one_line(tmp_path):
    r = CliRunner().invoke(main, ["simulate", str(EXAMPLES / "alexnet.yaml"), "-t", "nosuch", "--report", "cycles"])
    assert r.exit_code == 2 and r.output.strip().startswith("error: target nosuch:")


def test_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "fig4.png"
    r = CliRunner().invoke(main, ["simulate", "--sweep", "channels", "--plot", str(out)])
    assert r.exit_code == 0 and out.read_bytes()[:4] == b"\x89PNG"


def test_cycles_table_with_input_shows_the_functional_run(tmp_path):
    """--input adds the output to the table (shape, argmax, range, first values); the counts are
    those of the counts-only run."""
    net, x = str(EXAMPLES / "digits" / "digits_xnor.yaml"), tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).standard_normal((1, 8, 8)).astype(np.float32))
    args = ["simulate", net, "-t", "x86-64", "--report", "cycles"]
    plain, functional, as_json = (CliRunner().invoke(main, args + extra)
                                  for extra in ([], ["--input", str(x)], ["--input", str(x), "--format", "json"]))
    assert plain.exit_code == functional.exit_code == as_json.exit_code == 0, functional.output
    y = np.asarray(json.loads(as_json.output)["output"]).ravel()
    head, *rows, summary, values = functional.output.splitlines()
    assert "functional run on the input" in head and "counts only" in plain.output.splitlines()[0]
    assert rows == plain.output.splitlines()[1:] and "output" not in plain.output
    assert summary == f"output [10]: argmax {y.argmax()}, min {y.min():.6g}, max {y.max():.6g}"
    assert values.split() == [f"{v:.6g}" for v in y]


def test_output_summary_shows_the_first_values_of_a_long_output():
    from xnorgen.sim.report import _output_summary
    assert _output_summary([[float(i)] for i in range(12)]).splitlines() == \
        ["output [12, 1]: argmax 11, min 0, max 11", "  0 1 2 3 4 5 6 7 8 9 ... (2 more)"]
