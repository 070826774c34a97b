"""Measure the generated kernels on the host: callgrind instruction counts and wall-clock time.

The generated <net>.c is compiled unchanged except that every layer kernel
(`static void <net>_layer_*`) gets __attribute__((noinline)), so each shows up
as its own function; the helpers (pack, mean, box) stay inlined into it, as in
the real build. Flags are the target's own cflags.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

HARNESS = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <stdio.h>
#include "{name}.h"
static uint8_t arena[{NAME}_ARENA_SIZE + 1] __attribute__((aligned(64)));
static float in[{NAME}_INPUT_SIZE], out[{NAME}_OUTPUT_SIZE];
int main(int argc, char **argv)
{{
    int reps = argc > 1 ? atoi(argv[1]) : 1;
    srand(1);
    for (int i = 0; i < {NAME}_INPUT_SIZE; ++i)
        in[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < reps; ++r)
        if ({name}_infer(in, out, arena) != 0)
            return 1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (reps > 1)
        printf("%.9f\n", ((t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec)) / reps);
    return 0;
}}
"""


def available() -> bool:
    """True if valgrind and callgrind_annotate are on PATH."""
    return shutil.which("valgrind") is not None and shutil.which("callgrind_annotate") is not None


def build_harness(net, target, workdir) -> Path:
    """Compile the network (with weights) and a driver into workdir/harness; returns the binary."""
    from xnorgen.api import compile_network
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    plan, files = compile_network(net, target)
    name = net.name
    for fname, text in files.items():
        if fname == f"{name}.c":
            text = re.sub(r"^static void ", "static __attribute__((noinline)) void ", text, flags=re.M)
        (work / fname).write_text(text)
    (work / "harness.c").write_text(HARNESS.format(name=name, NAME=name.upper()))
    exe = work / "harness"
    cmd = [plan.target.cc, *plan.target.cflags, "-I", str(work), str(work / "harness.c"),
           str(work / f"{name}.c"), str(work / f"{name}_weights.c"), "-o", str(exe), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return exe


def callgrind_counts(exe: Path, prefix: str) -> dict[str, int]:
    """Exclusive instruction counts (Ir) of the functions whose names start with prefix."""
    out = exe.parent / "callgrind.out"
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(exe)],
                   check=True, capture_output=True, text=True)
    text = subprocess.run(["callgrind_annotate", "--threshold=100", str(out)],
                          check=True, capture_output=True, text=True).stdout
    counts = {}
    for m in re.finditer(r"^\s*([\d,]+)\s.*?:(\w+)\s", text, flags=re.M):
        if m.group(2).startswith(prefix):
            counts[m.group(2)[len(prefix):]] = int(m.group(1).replace(",", ""))
    return counts


def wall_seconds(exe: Path, reps: int) -> float:
    """Mean seconds per inference over reps runs (monotonic clock)."""
    res = subprocess.run([str(exe), str(reps)], check=True, capture_output=True, text=True)
    return float(res.stdout.strip())


def measure(net, target, workdir) -> dict[str, int]:
    """{ident: measured instructions} for every kernel of net compiled for target: layer kernels
    by their layer's C ident, standalone binarize stages as "binarize_<ident>" (the simulator's
    LayerResult.ident for both)."""
    exe = build_harness(net, target, workdir)
    counts = callgrind_counts(exe, f"{net.name}_")
    return {(k[len("layer_"):] if k.startswith("layer_") else k): v for k, v in counts.items() if k != "infer"}
