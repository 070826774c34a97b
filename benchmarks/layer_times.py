"""Per-kernel times of a compiled network: a C harness times each call of the generated driver.

    python benchmarks/layer_times.py NET.yaml [--target host] [--reps 200] [--cold-mib 0 [--cold-read]]

The network's driver (<name>_infer) is a straight list of kernel calls; this script compiles the
generated C with a harness that makes the same calls in the same order on the same arena and
times each one (median over reps, clock_gettime), so the table shows where a network's time
goes without Python in the way. --cold-mib N writes an N MiB buffer before every round, which
evicts the input, output and arena from the inner caches as an interleaved benchmark does
(--cold-read reads it instead, which leaves the caches clean: no dirty lines to write back).
A description without weights gets seeded random ones (shapes are what matter for time).
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import xnorgen
from xnorgen.target import resolve

HARNESS = r"""
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "{name}.c"
static double xg_now(void) {{ struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }}
static void *xg_alloc(size_t n) {{ void *p = NULL; return posix_memalign(&p, 64, (n + 63) / 64 * 64 + 64) ? NULL : p; }}
static int xg_cmp(const void *a, const void *b) {{ double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }}
int main(void)
{{
    enum {{ REPS = {reps}, N = {n} }};
    static double t[N][REPS];
    const size_t junk_n = (size_t){cold_mib} << 20;
    unsigned char *junk = junk_n ? malloc(junk_n) : NULL;
    float *input = xg_alloc({prefix}_INPUT_SIZE * 4);
    float *output = xg_alloc({prefix}_OUTPUT_SIZE * 4);
    unsigned char *const a = xg_alloc({prefix}_ARENA_SIZE);
    const char *names[N] = {{ {names} }};
    srand(1);
    for (int i = 0; i < {prefix}_INPUT_SIZE; ++i)
        input[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    if (junk) memset(junk, 1, junk_n);
    volatile unsigned sink = 0;
    for (int r = -3; r < REPS; ++r) {{
        double t0, t1;
        if (junk) for (size_t i = 0; i < junk_n; i += 64) {touch};
{calls}
    }}
    for (int i = 0; i < N; ++i) {{
        qsort(t[i], REPS, sizeof(double), xg_cmp);
        printf("%s\t%.6f\n", names[i], t[i][REPS / 2] * 1e3);
    }}
    return ((int)output[0] + (int)sink) & 0;
}}
"""


def driver_calls(c_source: str, name: str) -> list[str]:
    """The kernel call statements of <name>_infer, in order."""
    body = c_source.split(f"int {name}_infer(", 1)[1]
    body = body.split("(void)a;", 1)[1].split("return 0;", 1)[0]
    return [line.strip() for line in body.splitlines() if line.strip()]


def layer_times(net, target, reps: int = 200, cold_mib: int = 0,
                cold_read: bool = False) -> list[tuple[str, float]]:
    """[(kernel function, median ms)] for each call of the driver, in call order."""
    t = resolve(target) if isinstance(target, str) else target
    from xnorgen.api import compile_network
    from xnorgen.toolchain.output import write_directory
    _, files = compile_network(net, t)
    name = net.name
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_directory(files, d / "gen")
        src = (d / "gen" / f"{name}.c").read_text()
        calls = driver_calls(src, name)
        fns = [re.match(r"(\w+)\(", c).group(1) for c in calls]
        timed = "\n".join(f"        t0 = xg_now(); {c} t1 = xg_now(); if (r >= 0) t[{i}][r] = t1 - t0;"
                          for i, c in enumerate(calls))
        (d / "harness.c").write_text(HARNESS.format(
            name=name, prefix=name.upper(), reps=reps, n=len(calls), cold_mib=cold_mib, calls=timed,
            touch="sink += junk[i]" if cold_read else "junk[i]++",
            names=", ".join(f'"{f}"' for f in fns)))
        exe = d / "harness"
        # the harness includes the network's C: built with the target's own flags, its -std too
        # (a GNU dialect would contract a * b + c into FMAs the library does not have)
        subprocess.run([t.cc, *t.cflags, "-I", str(d / "gen"), str(d / "harness.c"),
                        str(d / "gen" / f"{name}_weights.c"), "-lm", "-o", str(exe)], check=True)
        out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return [(f, float(ms)) for f, ms in (line.split("\t") for line in out.splitlines())]


def load_with_weights(path: Path):
    """The network, with seeded random weights if its description names none."""
    net = xnorgen.load(path, weights=False)
    if net.weights_path is not None:
        return xnorgen.load(path)
    from xnorgen.frontend.weights import random_weights
    weights = Path(tempfile.mkdtemp()) / f"{path.stem}.npz"
    np.savez(weights, **random_weights(net, np.random.default_rng(3), weight_scale=0.1))
    return xnorgen.load(path, weights_file=weights)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("net", type=Path)
    ap.add_argument("--target", default="host")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--cold-mib", type=int, default=0, help="MiB written before every round")
    ap.add_argument("--cold-read", action="store_true", help="read the --cold-mib buffer instead of writing it")
    args = ap.parse_args(argv)
    net = load_with_weights(args.net)
    rows = layer_times(net, args.target, args.reps, args.cold_mib, args.cold_read)
    total = sum(ms for _, ms in rows)
    verb = "read" if args.cold_read else "written"
    print(f"{net.name} on {resolve(args.target).name}: medians of {args.reps} rounds"
          f"{f', {args.cold_mib} MiB {verb} between rounds' if args.cold_mib else ''}\n")
    print("| kernel | ms | share |\n| --- | --- | --- |")
    for fn, ms in rows:
        print(f"| {fn} | {ms:.4f} | {100 * ms / total:.1f}% |")
    print(f"| total | {total:.4f} | 100% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
