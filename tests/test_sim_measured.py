"""Instruction counters behind `xnorgen measure`: the armv8 block-log counter is exact on a loop
of known shape, and every counter reports each kernel the simulator predicts."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

import xnorgen
from netgen import random_network
from xnorgen.sim import qemu_count
from xnorgen.sim.measured import compare
from xnorgen.target import executes_here, resolve, tool

pytestmark = pytest.mark.cross

LOOP = """
#include <stdlib.h>
__attribute__((noinline)) int f(int n) { int s = 0; for (int i = 0; i < n; ++i) s += i * 3; return s; }
int main(int argc, char **argv) { return f(atoi(argv[1])) == 7; }
"""


def _armv8():
    t = resolve("armv8")
    if not executes_here(t):
        pytest.skip("aarch64-linux-gnu-gcc or qemu-aarch64 not installed")
    return t


def test_block_log_counts_a_loop_exactly(tmp_path):
    """f(n) runs a fixed body n times: its counts must be exactly linear in n, in whole bodies."""
    t = _armv8()
    (tmp_path / "f.c").write_text(LOOP)
    exe = tmp_path / "f"
    subprocess.run([t.cc, "-O1", "-static", str(tmp_path / "f.c"), "-o", str(exe)], check=True)
    counts = []
    for n in (1000, 2000, 3000):
        log = tmp_path / f"log{n}"
        subprocess.run([t.run[0], "-d", "in_asm,exec,nochain", "-D", str(log), str(exe), str(n)], check=True)
        counts.append(qemu_count.function_counts(exe, qemu_count.block_counts(log), tool(t, "nm"))["f"])
    body = counts[1] - counts[0]
    assert body == counts[2] - counts[1] and body % 1000 == 0 and 2 <= body // 1000 <= 8, counts


@pytest.mark.parametrize("target", ["armv8", "cortex-m4"])
def test_every_predicted_kernel_is_measured(tmp_path, target):
    t = resolve(target)
    if target == "armv8":
        _armv8()
    elif not shutil.which(t.cc) or not shutil.which(t.run[0]):
        pytest.skip("arm-none-eabi-gcc or qemu-system-arm not installed")
    net = xnorgen.load(random_network(tmp_path, "mk", np.random.default_rng(12), output="fc"))
    rep = compare(net, t)
    assert rep["layers"] and all(r["measured"] > 0 and r["predicted"] for r in rep["layers"])
    kinds = {r["type"] for r in rep["layers"]}
    assert {"conv2d", "dense"} <= kinds
