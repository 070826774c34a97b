"""A second opinion on the simulator's cycles: llvm-mca's scheduling model of the code that ran.

The emulator's block log (qemu -d in_asm,exec,nochain; sim.qemu_count) says which basic blocks
of each kernel ran and how often. Each executed block, as objdump prints it, goes through llvm-mca
for the target's core (cortex-m4 for cortex-m4, cortex-a72 for armv8): its steady-state cycles per
iteration, as if the block looped on itself. A kernel's cycles are the sum over its blocks of
executions x cycles per iteration. That is right for the inner loops, which dominate, and a rough
figure for blocks that run once (llvm-mca does not model a cold pipeline, cache misses or
branch mispredictions; the M4's taken-branch refill is not in its model either).

`kernel_cycles` -> {kernel ident: llvm-mca cycles of one inference}; benchmarks/mca.py sets them
beside the simulator's predicted cycles (docs/firmware.md has the table).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from xnorgen.target import tool

from .qemu_count import executed_blocks, function_counts

#: llvm-mca's target and core for each xnorgen target it can model.
MCA_CORE = {"cortex-m4": ("thumbv7em-none-eabi", "cortex-m4"), "armv8": ("aarch64", "cortex-a72")}
_BRANCH = re.compile(r"^(b|bl|b\.\w+|b(eq|ne|gt|ge|lt|le|hi|hs|lo|ls|mi|pl|cc|cs)(\.[nw])?|cbn?z|tbn?z)$")
_ITERATIONS = 100


def available(target) -> bool:
    return target.name in MCA_CORE and shutil.which("llvm-mca") is not None


def disassembly(exe: Path, objdump: str) -> list[tuple[int, str]]:
    """(address, instruction text) of every instruction of exe, in address order."""
    out = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(exe)], capture_output=True, text=True,
                         check=True).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s+([0-9a-f]+):\s+(\S.*)$", line)
        if m and not m.group(2).startswith((".word", ".short", ".inst", "udf")):
            rows.append((int(m.group(1), 16), m.group(2).split(";")[0].split("@")[0].split("//")[0].strip()))
    return rows


def for_mca(text: str, thumb: bool) -> str:
    """An objdump line as llvm-mc assembles it: branches go to the local label `top` (objdump
    prints absolute targets), Thumb's `.w`/`.n` width suffixes come off other instructions."""
    op, _, args = text.partition("\t") if "\t" in text else text.partition(" ")
    op, args = op.strip(), re.sub(r"\s*<[^>]*>", "", args.strip())
    if op in ("cbz", "cbnz"):                     # Thumb's reach forward only: a compare instead
        return f"cmp {args.split(',')[0]}, #0"
    if op in ("tbz", "tbnz"):
        return f"{op} {','.join(args.split(',')[:2])}, top"
    if _BRANCH.match(op):
        return f"{op.removesuffix('.n').removesuffix('.w')}{'.w' if thumb else ''} top"
    if op in ("bx", "blx", "ret", "br", "blr"):
        return "nop"
    if thumb and op.endswith((".w", ".n")):
        op = op[:-2]
    return f"{op} {args}".strip()


def mca_cycles(blocks: list[list[str]], target) -> list[float]:
    """Steady-state cycles per iteration of each block (a list of objdump lines), by llvm-mca."""
    triple, cpu = MCA_CORE[target.name]
    thumb = triple.startswith("thumb")
    body = [".syntax unified\n.thumb\n" if thumb else "", "top:\n"]
    for i, b in enumerate(blocks):
        lines = "\n".join(for_mca(t, thumb) for t in b)
        body.append(f"# LLVM-MCA-BEGIN b{i}\n{lines}\n# LLVM-MCA-END b{i}\n")
    r = subprocess.run(["llvm-mca", f"-mtriple={triple}", f"-mcpu={cpu}", f"-iterations={_ITERATIONS}"],
                       input="".join(body), capture_output=True, text=True)
    totals = [int(m) for m in re.findall(r"^Total Cycles:\s+(\d+)", r.stdout, re.M)]
    if r.returncode != 0 or len(totals) != len(blocks):
        raise RuntimeError(f"llvm-mca analysed {len(totals)} of {len(blocks)} blocks: {r.stderr.strip()[:400]}")
    return [t / _ITERATIONS for t in totals]


def kernel_cycles(exe: Path, log: Path, target, prefix: str) -> dict[str, float]:
    """{function name without prefix: llvm-mca cycles over the logged run} for exe's functions
    starting with prefix."""
    blocks = {pc: v for pc, v in executed_blocks(log).items() if v[0]}
    insns = disassembly(exe, tool(target, "objdump"))
    index = {a: i for i, (a, _) in enumerate(insns)}
    starts = [pc for pc in blocks if pc in index]
    texts = [[t for _, t in insns[index[pc]:index[pc] + blocks[pc][0]]] for pc in starts]
    per_iter = mca_cycles(texts, target)
    weighted = {pc: c * blocks[pc][1] for pc, c in zip(starts, per_iter)}
    per_fn = function_counts(exe, weighted, tool(target, "nm"))
    return {k[len(prefix):]: v for k, v in per_fn.items() if k.startswith(prefix)}


def logged_run(net, target, workdir) -> tuple[Path, Path, int]:
    """Build net's counting program for target, run it once under its emulator with the block log
    on: (executable, log, inferences it ran). cortex-m4: the firmware counting image (each kernel
    called alone, then the whole inference: 2); armv8: the static harness on one sample (1)."""
    d = Path(workdir)
    log = d / "mca.log"
    if target.firmware:
        from xnorgen.toolchain import firmware
        firmware.measure(net, target, d)                 # builds count.elf (and counts it)
        exe = d / "count.elf"
        cmd = [*target.run[:-1], "-d", "in_asm,exec,nochain", "-D", str(log), target.run[-1], str(exe)]
        subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=1800, check=True)
        return exe, log, 2
    from .callgrind import build_harness
    exe = build_harness(net, target, d, link_flags=("-static",))
    runner = [w for w in target.run if w not in ("-L",) and not w.startswith("/")]   # static: no sysroot
    subprocess.run([*runner, "-d", "in_asm,exec,nochain", "-D", str(log), str(exe), str(exe.parent / "x.bin"),
                    str(exe.parent / "y.bin"), "1"], check=True, capture_output=True, timeout=1800)
    return exe, log, 1


def inference_cycles(net, target, workdir) -> dict[str, float]:
    """{kernel ident (as `xnorgen measure` names them): llvm-mca cycles of one inference}."""
    from .callgrind import kernel_counts
    exe, log, runs = logged_run(net, target, workdir)
    per_fn = kernel_cycles(exe, log, target, f"{net.name}_")
    log.unlink()
    return {k: v / runs for k, v in kernel_counts(per_fn).items()}
