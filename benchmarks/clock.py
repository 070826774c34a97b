"""Measure the core clock from a chain of dependent 64-bit multiplies (3 cycles each on every
x86-64 core since Sandy Bridge/Zen; adds are not used because recent cores fold them at rename)."""
from __future__ import annotations

import time

_SRC = r"""
#include <stdint.h>
uint64_t xg_add_chain(uint64_t n)
{
    uint64_t x = 3;
    for (uint64_t i = 0; i < n; ++i) {
        __asm__ volatile("imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0\n\t"
                         "imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0" : "+r"(x));
    }
    return x;
}
"""


def compile_c(name: str, cdef: str, src: str, flags: list[str]):
    """A small C source compiled through cffi into a temporary directory and loaded (module name)."""
    import cffi
    import importlib.util
    import tempfile
    ffi = cffi.FFI()
    ffi.cdef(cdef)
    ffi.set_source(name, src, extra_compile_args=flags)
    so = ffi.compile(tmpdir=tempfile.mkdtemp())
    spec = importlib.util.spec_from_file_location(name, so)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def measure_clock_ghz(n: int = 20_000_000, reps: int = 7) -> float:
    """GHz from reps runs of 8*n dependent imuls at 3 cycles each (x86-64 only): the fastest run,
    since on a shared VM time stolen by other guests only ever makes a run look slower (the
    median read 2.72-2.88 GHz while warm AVX-512 layers ran at rates that need >= 2.97 GHz)."""
    mod = compile_c("_xg_clock", "uint64_t xg_add_chain(uint64_t n);", _SRC, ["-O2"])
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        mod.lib.xg_add_chain(n)
        rates.append(3 * 8 * n / (time.perf_counter() - t0) / 1e9)
    return max(rates)
