"""Measure the generated kernels on the host: callgrind instruction counts.

The generated <net>.c is compiled unchanged except that every layer kernel
(`static void <net>_layer_*`) gets __attribute__((noinline)), so each shows up
as its own function; the helpers (pack, mean, box) stay inlined into it, as in
the real build. Flags are the target's own cflags; the C main is the one harness
(xnorgen.toolchain.harness, mode io) on one seeded random sample.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from xnorgen.toolchain.harness import render_io

def available() -> bool:
    """True if valgrind and callgrind_annotate are on PATH."""
    return shutil.which("valgrind") is not None and shutil.which("callgrind_annotate") is not None


def build_harness(net, target, workdir, link_flags=()) -> Path:
    """Compile the network (with weights) and the io harness into workdir/harness, and write one
    seeded random sample to workdir/x.bin; returns the binary."""
    from xnorgen.api import compile_network
    from xnorgen.naming import kernel_symbol
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    plan, files = compile_network(net, target)
    name = net.name
    kernel = re.escape(kernel_symbol(name, ""))
    for fname, text in files.items():
        if fname == f"{name}.c":
            text = re.sub(rf"^static void (?={kernel}|{re.escape(name)}_binarize_)",
                          "static __attribute__((noinline)) void ", text, flags=re.M)
        (work / fname).write_text(text)
    (work / "harness.c").write_text(render_io(name))
    x = np.random.default_rng(1).uniform(-0.5, 0.5, plan.input_size).astype(np.float32)
    (work / "x.bin").write_bytes(x.tobytes())
    exe = work / "harness"
    cmd = [plan.target.cc, *plan.target.cflags, "-I", str(work), str(work / "harness.c"),
           str(work / f"{name}.c"), str(work / f"{name}_weights.c"), "-o", str(exe), "-lm", *link_flags]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return exe


def callgrind_counts(exe: Path, prefix: str) -> dict[str, int]:
    """Exclusive instruction counts (Ir) of the functions whose names start with prefix."""
    out = exe.parent / "callgrind.out"
    d = exe.parent
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(exe), str(d / "x.bin"),
                    str(d / "y.bin"), "1"],
                   check=True, capture_output=True, text=True)
    text = subprocess.run(["callgrind_annotate", "--threshold=100", str(out)],
                          check=True, capture_output=True, text=True).stdout
    counts = {}
    for m in re.finditer(r"^\s*([\d,]+)\s.*?:([\w.]+)\s", text, flags=re.M):   # names with gcc clone suffixes too
        if m.group(2).startswith(prefix):
            counts[m.group(2)[len(prefix):]] = int(m.group(1).replace(",", ""))
    return counts


def measure(net, target, workdir) -> dict[str, int]:
    """{ident: measured instructions} for every kernel of net compiled for target: layer kernels
    by their layer's C ident, standalone binarize stages as "binarize_<ident>" (the simulator's
    LayerResult.ident for both)."""
    exe = build_harness(net, target, workdir)
    return kernel_counts(callgrind_counts(exe, f"{net.name}_"))


#: Functions the C generates around a kernel on hosted targets (network.c.j2): its step in the
#: driver, into which a split kernel is inlined, and its serial prologue. Their instructions are
#: the kernel's.
KERNEL_PARTS = ("_step", "_pre")


def kernel_counts(by_function: dict[str, int]) -> dict[str, int]:
    """{function name without the <net>_ prefix: count} -> {kernel ident: count} as the simulator
    names them: layer kernels by their layer's ident, stages as binarize_<ident>; a kernel's step
    and prologue (KERNEL_PARTS) and gcc's clones of them added to it; the entry points dropped."""
    out: dict[str, int] = {}
    for k, v in by_function.items():
        k = k.split(".", 1)[0]          # gcc's clones: <fn>.constprop.0, <fn>.isra.0, <fn>.part.0
        if k in ("infer", "infer_parallel", "infer_batch"):
            continue
        for suffix in KERNEL_PARTS:
            if k.endswith(suffix):
                k = k[: -len(suffix)]
        k = k[len("layer_"):] if k.startswith("layer_") else k
        out[k] = out.get(k, 0) + v
    return out
