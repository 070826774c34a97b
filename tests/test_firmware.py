"""Firmware made real (issue 17): the library built for cortex-m4 runs as an image on qemu's
emulated Cortex-M4 (mps2-an386) through the kit in templates/firmware/, and armv8 under
qemu-aarch64; each target's outputs equal the simulator's functional run for that target, bit
for bit (the simulator is held to the golden model elsewhere)."""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import xnorgen
from netgen import random_dag_layers, random_input, random_network, write_net
from xnorgen.api import run_on_target
from xnorgen.cli import main
from xnorgen.plan.core import plan_network
from xnorgen.sim.machine import run_plan
from xnorgen.target import executes_here, resolve
from xnorgen.toolchain import firmware

pytestmark = pytest.mark.cross


def _need(target):
    t = resolve(target)
    if not (firmware.can_run(t) or executes_here(t)):
        pytest.skip(f"{target}: its compiler or emulator is not installed (.ci/run installs them)")
    return t


def _simulated(net, t, x):
    plan = plan_network(net, t)
    return np.stack([run_plan(plan, s).output.reshape(-1) for s in x])


def _nets(tmp_path, n):
    """Whole random networks (float stem, xnor/bwn blocks, residual, dense head; up to the logits:
    the softmax's expf is libm's and may differ by an ulp) and random DAGs."""
    for seed in range(n):
        rng = np.random.default_rng(300 + seed)
        yield xnorgen.load(random_network(tmp_path, f"fw{seed}", rng, output="fc")), rng
        shape = (int(rng.choice([1, 3, 64, 65])), int(rng.integers(2, 9)), int(rng.integers(2, 9)))
        yield xnorgen.load(write_net(tmp_path, f"dag{seed}", shape, random_dag_layers(rng, shape), rng)), rng


@pytest.mark.parametrize("target", ["cortex-m4", "armv8"])
def test_target_bits_equal_the_simulator(tmp_path, target):
    t = _need(target)
    for net, rng in _nets(tmp_path, 3):
        x = random_input(net, rng, batch=2)
        y = run_on_target(net, x, target)
        assert y.shape == (2, *net.output_shape)
        assert np.array_equal(y.reshape(2, -1), _simulated(net, t, x)), (target, net.name)


def test_cli_run_on_the_emulated_cortex_m4(tmp_path):
    _need("cortex-m4")
    rng = np.random.default_rng(9)
    path = random_network(tmp_path, "cli", rng, output="fc")
    net = xnorgen.load(path)
    x = random_input(net, rng)
    np.save(tmp_path / "x.npy", x)
    r = CliRunner().invoke(main, ["run", str(path), "-i", str(tmp_path / "x.npy"), "-t", "cortex-m4",
                                  "-o", str(tmp_path / "y.npy")])
    assert r.exit_code == 0, r.output
    y = np.load(tmp_path / "y.npy")
    assert y.shape == tuple(net.output_shape)
    assert np.array_equal(y.reshape(1, -1), _simulated(net, resolve("cortex-m4"), x[None]))
    np.testing.assert_allclose(y, xnorgen.reference(net, x), rtol=1e-4, atol=1e-4 * np.abs(y).max())


def test_a_target_this_machine_cannot_run_is_one_line(tmp_path, monkeypatch):
    path = random_network(tmp_path, "no", np.random.default_rng(1), output="fc")
    np.save(tmp_path / "x.npy", random_input(xnorgen.load(path), np.random.default_rng(2)))
    monkeypatch.setattr(firmware, "can_run", lambda t: False)
    monkeypatch.setattr("xnorgen.target.executes_here", lambda t: False)
    r = CliRunner().invoke(main, ["run", str(path), "-i", str(tmp_path / "x.npy"), "-t", "cortex-m4"])
    assert r.exit_code == 2 and r.output.startswith("error: target cortex-m4: cannot run on this machine")


def test_measured_instructions_add_up(tmp_path):
    """The counter is self-consistent: the kernels, each counted on its own, add up to the whole
    inference counted in the same run (SysTick under qemu -icount, calibrated by a known loop)."""
    t = _need("cortex-m4")
    if not firmware.can_run(t):
        pytest.skip("no emulated Cortex-M4 here")
    net = xnorgen.load(random_network(tmp_path, "cnt", np.random.default_rng(4), output="fc"))
    counts = firmware.measure(net, t, tmp_path / "m")
    whole = counts.pop("infer")
    assert set(counts) >= {"stem", "b2", "fc1", "fc"} and all(v > 0 for v in counts.values())
    assert abs(sum(counts.values()) - whole) <= 0.01 * whole + 40 * len(counts), (sum(counts.values()), whole)


def test_cli_measure_sets_counts_beside_the_simulator(tmp_path):
    _need("cortex-m4")
    path = random_network(tmp_path, "ms", np.random.default_rng(6), output="fc")
    r = CliRunner().invoke(main, ["measure", str(path), "-t", "cortex-m4", "--format", "json"])
    assert r.exit_code == 0, r.output
    import json
    rep = json.loads(r.output)
    kernels = {row["kernel"] for row in rep["layers"]}
    assert {"stem", "b2", "fc"} <= kernels and all(row["predicted"] for row in rep["layers"])
    assert rep["total"]["measured"] == sum(row["measured"] for row in rep["layers"])


def test_ram_includes_the_worst_case_stack(tmp_path):
    """compile's RAM figure for a firmware target counts the library's stack (-fstack-usage):
    <name>_infer's frame plus the largest frame it calls."""
    t = resolve("cortex-m4")
    if not firmware.shutil.which(t.cc):
        pytest.skip("arm-none-eabi-gcc not installed")
    from xnorgen.api import compile_network
    from xnorgen.toolchain.cross import size_report
    net = xnorgen.load(random_network(tmp_path, "st", np.random.default_rng(8), output="fc"))
    plan, files = compile_network(net, t)
    rep = size_report(plan, files)
    assert rep.measured and 0 < rep.stack_bytes < 4096
    s = rep.sections
    assert rep.ram_bytes == plan.arena_size + rep.io_bytes + s["data"] + s["bss"] + rep.stack_bytes
    assert f"stack {rep.stack_bytes} B" in rep.describe()


def test_libm_calls_are_priced_as_measured(tmp_path):
    """cortex-m4's expf (targets/cortex-m4.yaml libm.exp, from a measurement) makes the simulator's
    softmax count agree with the emulated M4 on another size than it was measured at; and on an
    in-order, single-issue core no kernel is predicted to take fewer cycles than instructions."""
    t = _need("cortex-m4")
    if not firmware.can_run(t):
        pytest.skip("no emulated Cortex-M4 here")
    net = xnorgen.load(write_net(tmp_path, "sm", [257], [{"name": "p", "type": "softmax"}]))
    run = run_plan(plan_network(net, t))
    for scale in (0.5, 3.0):           # expf's instructions depend on its argument: 63 to 74
        x = np.random.default_rng(2).uniform(-scale, scale, 257)
        measured = firmware.measure(net, t, tmp_path / f"m{scale}", x=x)["p"]
        assert abs(run.layers[0].instructions / measured - 1) < 0.10, (run.layers[0].instructions, measured)
    for path in ("examples/digits/digits_xnor.yaml", "examples/cifar_xnor.yaml"):
        for r in run_plan(plan_network(xnorgen.load(path, weights=False), t)).layers:
            assert r.cycles >= r.instructions, (path, r.name)


@pytest.mark.parametrize("example", ["digits/digits_bwn.yaml", "digits/digits_float.yaml"])
def test_m4_float_and_bwn_windows_equal_the_simulator(tmp_path, example):
    """cortex-m4's own float and bwn windows (xg_swar.h: outputs in pairs, bwn masks as +-1.0
    weights) against the simulator, bit for bit, on the examples whose convs take them (up to
    the logits: newlib's expf and numpy's differ in the last bit)."""
    t = _need("cortex-m4")
    if not firmware.can_run(t):
        pytest.skip("no emulated Cortex-M4 here")
    from pathlib import Path
    src = Path(__file__).resolve().parent.parent / "examples" / example
    doc = yaml.safe_load(src.read_text())
    doc.update(output="fc", weights=str(src.with_suffix(".npz")))
    (tmp_path / src.name).write_text(yaml.safe_dump(doc))
    net = xnorgen.load(tmp_path / src.name)
    x = random_input(net, np.random.default_rng(5), batch=3)
    assert np.array_equal(run_on_target(net, x, "cortex-m4").reshape(3, -1), _simulated(net, t, x))
