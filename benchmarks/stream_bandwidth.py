"""One core's read bandwidth from buffers of growing size: where L2 ends and what lies beyond it
streams at (the `memory` resource of a target's `ports`, in cycles per 64-byte line).

    python benchmarks/stream_bandwidth.py [--mib 1,2,4,8,16] [--reps 50]

Each size is read front to back with 64-byte loads XORed together (nothing to compute, nothing
written), warm: the median of reps passes. Cycles per line use the clock of benchmarks/clock.py.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clock import compile_c, measure_clock_ghz  # noqa: E402

_SRC = r"""
#include <stdint.h>
#include <stddef.h>
uint64_t xg_read_all(const uint64_t *p, size_t n)
{
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i < n; i += 32) {          /* four lines per step, 8 words each */
        for (int k = 0; k < 8; ++k) {
            a ^= p[i + k]; b ^= p[i + 8 + k]; c ^= p[i + 16 + k]; d ^= p[i + 24 + k];
        }
    }
    return a ^ b ^ c ^ d;
}
"""


def _module():
    return compile_c("_xg_stream", "uint64_t xg_read_all(const uint64_t *p, size_t n);", _SRC, ["-O3", "-march=native"])


def read_seconds(mod, mib: int, reps: int) -> float:
    """Median seconds to read a mib-MiB buffer once, warm."""
    buf = np.arange((mib << 20) // 8, dtype=np.uint64)
    ptr = mod.ffi.cast("const uint64_t *", buf.ctypes.data)
    times = []
    for _ in range(reps + 2):
        t0 = time.perf_counter()
        mod.lib.xg_read_all(ptr, buf.size)
        times.append(time.perf_counter() - t0)
    return float(np.median(times[2:]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", default="1,2,4,8,16")
    ap.add_argument("--reps", type=int, default=50)
    args = ap.parse_args(argv)
    mod = _module()
    ghz = measure_clock_ghz()
    print(f"clock {ghz:.2f} GHz\n\n| buffer MiB | GB/s | cycles per 64-byte line |\n| ---: | ---: | ---: |")
    for mib in (int(m) for m in args.mib.split(",")):
        s = read_seconds(mod, mib, args.reps)
        lines = (mib << 20) / 64
        print(f"| {mib} | {(mib << 20) / s / 1e9:.1f} | {s * ghz * 1e9 / lines:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
