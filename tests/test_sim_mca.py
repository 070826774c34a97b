"""sim/mca.py: llvm-mca's cycles for the blocks that ran, as a check on the simulator's cycle model."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import xnorgen
from xnorgen.plan.core import plan_network
from xnorgen.sim.machine import run_plan
from xnorgen.sim.mca import for_mca, inference_cycles, mca_cycles
from xnorgen.sim.qemu_count import executed_blocks
from xnorgen.target import executes_here, resolve

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _need(name):
    t = resolve(name)
    if not shutil.which("llvm-mca"):
        pytest.skip("llvm-mca not installed (.ci/run installs llvm)")
    if name == "armv8" and not executes_here(t):
        pytest.skip("aarch64-linux-gnu-gcc or qemu-aarch64 not installed")
    if name == "cortex-m4" and not (shutil.which(t.cc) and shutil.which(t.run[0])):
        pytest.skip("arm-none-eabi-gcc or qemu-system-arm not installed")
    return t


def test_objdump_lines_become_assemblable():
    assert for_mca("bne.n\t188 <r4_layer_b1+0xd0>", thumb=True) == "bne.w top"
    assert for_mca("cbz\tr3, 1f0 <f+0x10>", thumb=True) == "cmp r3, #0"
    assert for_mca("mul.w\tr4, r5, r4", thumb=True) == "mul r4, r5, r4"
    assert for_mca("b.ne\t400b78 <k+0x28>  ", thumb=False) == "b.ne top"
    assert for_mca("ldp\tq0, q1, [x3]", thumb=False) == "ldp q0, q1, [x3]"


def test_a_single_issue_core_takes_a_cycle_per_instruction_at_least():
    t = _need("cortex-m4")
    block = ["ldr\tr3, [sp, #4]", "eor.w\tr9, r6, r3", "and.w\tfp, r2, r9, lsr #1", "sub.w\tr9, r9, fp",
             "mul.w\tr2, ip, r2", "vadd.f32\ts2, s2, s17", "bne.n\t188 <x>"]
    (c,) = mca_cycles([block], t)
    assert c >= len(block)


def test_block_log_parsing(tmp_path):
    log = tmp_path / "q.log"
    log.write_text("IN: f\n0x00000100:  4770  add r0, r1\n0x00000102:  4770  bx lr\n\n"
                   "Trace 0: 0x1 [00000000/00000100/00000000/00000000] f\n"
                   "Trace 0: 0x1 [00000000/00000100/00000000/00000000] f\n")
    assert executed_blocks(log) == {0x100: (2, 2)}


@pytest.mark.cross
@pytest.mark.parametrize("target", ["cortex-m4", "armv8"])
def test_every_kernel_gets_llvm_mca_cycles(tmp_path, target):
    """Every kernel the simulator predicts gets a figure; on the in-order single-issue M4 the
    simulator's cycles for the convolutions stay within 1.5x of llvm-mca's (measured 1.07-1.29 on
    cifar_xnor: the simulator charges loads 2 cycles, llvm-mca's M4 model mostly 1)."""
    t = _need(target)
    net = xnorgen.load(EXAMPLES / "digits" / "digits_xnor.yaml")
    mca = inference_cycles(net, t, tmp_path)
    pred = {r.ident: r for r in run_plan(plan_network(net, t)).layers if r.instructions}
    assert set(pred) <= set(mca), set(pred) - set(mca)
    for k, r in pred.items():
        assert mca[k] > 0, k
        if target == "cortex-m4" and r.type in ("conv2d", "dense"):
            assert 0.67 < r.cycles / mca[k] < 1.5, (k, r.cycles, mca[k])
