"""Models trained elsewhere (examples/onnx/: a PyTorch XNOR-Net and a Brevitas w1a1 MLP in
QONNX) import, compile and match the framework's own outputs within the contract's tolerance,
on the host and on the emulated Cortex-M4; and examples/onnx/README.md's three commands work."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

import xnorgen

pytest.importorskip("onnx")
HERE = Path(__file__).resolve().parents[1] / "examples" / "onnx"
MODELS = {"xnor_digits": [("conv2d", "float"), ("conv2d", "xnor"), ("maxpool", None), ("batchnorm", None),
                          ("flatten", None), ("dense", "float")],
          "brevitas_mlp": [("dense", "xnor"), ("batchnorm", None), ("dense", "xnor")]}


def _io(name):
    x, y = np.load(HERE / f"{name}.x.npy"), np.load(HERE / f"{name}.y.npy")
    return x, y, 1e-4 * max(1.0, float(np.abs(y).max()))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fixture_imports_and_matches_its_framework(name):
    net = xnorgen.load(HERE / f"{name}.onnx")
    assert [(la.type, getattr(la, "mode", None)) for la in net.layers] == MODELS[name]
    if name == "xnor_digits":                      # the paper's K was recognized
        assert net.layers[1].scale_input
    x, y, tol = _io(name)
    ref = np.stack([np.asarray(xnorgen.reference(net, s)) for s in x])
    assert np.abs(ref - y).max() <= tol
    assert np.abs(np.asarray(xnorgen.build(net)(x)) - y).max() <= tol


@pytest.mark.cross
@pytest.mark.parametrize("name", sorted(MODELS))
def test_fixture_runs_on_the_emulated_cortex_m4(name):
    from xnorgen.api import run_on_target
    from xnorgen.target import resolve
    from xnorgen.toolchain import firmware
    if not firmware.can_run(resolve("cortex-m4")):
        pytest.skip("arm-none-eabi-gcc or qemu-system-arm not installed (.ci/run installs them)")
    x, y, tol = _io(name)
    got = run_on_target(xnorgen.load(HERE / f"{name}.onnx"), x[:4], "cortex-m4")
    assert np.abs(got - y[:4]).max() <= tol


def test_readme_commands(tmp_path):
    text = (HERE / "README.md").read_text()
    cmds = re.findall(r"^(xnorgen .+?)(?:\s+#.*)?$", text.split("```sh")[1].split("```")[0], re.M)
    assert len(cmds) == 3
    repo = HERE.parents[1]
    for cmd in cmds:
        cmd = cmd.replace("build/", f"{tmp_path}/build/").replace("-o y.npy", f"-o {tmp_path}/y.npy")
        r = subprocess.run(cmd.split(), cwd=repo, capture_output=True, text=True)
        assert r.returncode == 0, (cmd, r.stderr)
    x, y, tol = _io("xnor_digits")
    assert np.abs(np.load(tmp_path / "y.npy") - y).max() <= tol
