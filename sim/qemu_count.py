"""Instruction counts of the generated kernels under qemu user mode (armv8), without plugins.

qemu-aarch64 -d in_asm,exec,nochain logs every translated block (its instructions) and every
execution of one (chaining off, so none is skipped); instructions per function = sum over its
blocks of executions x block length, each block attributed to the function its first address
falls in (the binary is linked -static, so addresses are fixed, and kernels are noinline as for
callgrind). Exact for straight-line blocks; a block left early by an exception would be
over-counted, which the generated code never does.
"""
from __future__ import annotations

import bisect
import re
import subprocess
from pathlib import Path

from xnorgen.target import tool

from .callgrind import build_harness, kernel_counts

#: A translated block's instruction line: "0x0000004005c0:  d503201f  nop".
_INSN = re.compile(r"0x([0-9a-f]+):\s")


def executed_blocks(log: Path) -> dict[int, tuple[int, int]]:
    """{block start: (instructions in the block, executions)} from a qemu in_asm,exec,nochain log."""
    size, execs, start = {}, {}, None
    with open(log, errors="replace") as f:
        for line in f:
            if line.startswith("IN:"):
                start = None
            elif (m := _INSN.match(line)) is not None:
                pc = int(m.group(1), 16)
                if start is None:
                    start, size[pc] = pc, 0
                size[start] += 1
            elif line.startswith("Trace"):
                start = None
                pc = int(line.split("[", 1)[1].split("/")[1], 16)
                execs[pc] = execs.get(pc, 0) + 1
    return {pc: (size.get(pc, 0), n) for pc, n in execs.items()}


def block_counts(log: Path) -> dict[int, int]:
    """{block start address: instructions executed in it} from a qemu in_asm,exec,nochain log."""
    return {pc: size * n for pc, (size, n) in executed_blocks(log).items()}


def function_counts(exe: Path, blocks: dict[int, int], nm: str) -> dict[str, int]:
    """Instructions per function symbol of a static binary."""
    syms = []
    for line in subprocess.run([nm, "-n", str(exe)], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            syms.append((int(parts[0], 16), parts[2]))
    addrs = [a for a, _ in syms]
    out: dict[str, int] = {}
    for pc, n in blocks.items():
        i = bisect.bisect_right(addrs, pc) - 1
        if i >= 0:
            out[syms[i][1]] = out.get(syms[i][1], 0) + n
    return out


def measure(net, target, workdir) -> dict[str, int]:
    """{kernel ident: instructions of one inference} on target under its qemu `run` prefix."""
    exe = build_harness(net, target, workdir, link_flags=("-static",))
    d = exe.parent
    log = d / "qemu.log"
    runner = [w for w in target.run if w not in ("-L",) and not w.startswith("/")]   # static: no sysroot
    subprocess.run([*runner, "-d", "in_asm,exec,nochain", "-D", str(log), str(exe), str(d / "x.bin"),
                    str(d / "y.bin"), "1"], check=True, capture_output=True, text=True, timeout=1200)
    per_fn = function_counts(exe, block_counts(log), tool(target, "nm"))
    log.unlink()
    prefix = f"{net.name}_"
    return kernel_counts({k[len(prefix):]: v for k, v in per_fn.items() if k.startswith(prefix)})
