"""The one C harness (templates/harness.c.j2): a main() around generated networks, for cross
builds and sanitizer runs (mode io), callgrind counts, and the benchmarks (mode time).

render_io / render_timing return C source; only C identifiers (checked here) and integers
reach it. parse_timing reads what a timing harness prints.
"""
from __future__ import annotations

from dataclasses import dataclass

from xnorgen.codegen.render import _ENV, checked_context
from xnorgen.naming import infer_symbol, is_c_identifier


def render_io(name: str, firmware: bool = False, pool: bool = False) -> str:
    """Read samples from argv[1], write outputs to argv[2] (argv[3] samples), through <name>_infer,
    with heap buffers of exactly the sizes <name>.h's macros give. firmware: static buffers,
    samples read from xg_in.bin until its end and written to xg_out.bin (semihosting). pool (a
    hosted target's library, linked with xg_pool.c): an optional argv[4] runs every sample
    through <name>_infer_parallel with that many parts on an xg_pool of as many threads."""
    return _render(mode="io", firmware=firmware, infer=infer_symbol(name), P=name.upper(), includes=[f"{name}.h"],
                   externs=[], pool=pool)


def render_count(name: str, calls: list[tuple[str, str]]) -> str:
    """Firmware: one sample through each (name, C call statement) of the driver, instructions
    counted with SysTick under qemu's -icount (templates/harness.c.j2, mode count). The statements
    may use `input`, `output`, the arena `a` and the kernels of <name>.c, which it includes."""
    assert all(is_c_identifier(n) for n, _ in calls), "harness names must be C identifiers"
    return _render(mode="count", firmware=True, P=name.upper(), calls=[{"name": n, "call": c} for n, c in calls],
                   includes=[f"{name}.c"], externs=[], pool=0)


def render_timing(calls: list[tuple[str, str]], input_size: int, output_size: int, arena_size: int,
                  reps: int, warmup: int = 3, cold_mib: int = 0, cold_read: bool = False,
                  includes=(), externs=(), pool: int = 0, warm_pool: bool = False) -> str:
    """Time each (name, C call statement) round-robin; the statements may use `input`, `output`
    and the arena `a`, and functions from `includes` (quoted #include files) or `externs`
    (functions with <name>_infer's signature, linked in). pool: the harness makes `pool`, an
    xg_pool of that many threads (link xg_pool.c); warm_pool: an untimed empty parallel-for
    before each call wakes its workers (the state back-to-back calls keep them in)."""
    assert all(is_c_identifier(n) for n, _ in calls) and all(map(is_c_identifier, externs)), \
        "harness names must be C identifiers"
    return _render(mode="time", firmware=False, calls=[{"name": n, "call": c} for n, c in calls], includes=list(includes),
                   externs=list(externs), input_size=input_size, output_size=output_size,
                   arena_size=arena_size, reps=reps, warmup=warmup, cold_mib=cold_mib, cold_read=cold_read,
                   pool=pool, warm_pool=warm_pool)


def _render(**ctx) -> str:
    for h in ctx["includes"]:
        assert all(is_c_identifier(part) for part in h.split(".")), f"unsafe include {h!r}"
    checked_context({k: v for k, v in ctx.items() if k != "includes"})
    return _ENV.get_template("harness.c.j2").render(**ctx)


@dataclass
class Timing:
    name: str
    median_ms: float
    p25_ms: float
    ratio_to_first: float       # median over rounds of this call's time / the first call's


def parse_timing(stdout: str) -> list[Timing]:
    """The rows a timing harness prints, in call order."""
    rows = [line.split("\t") for line in stdout.splitlines() if line.strip()]
    return [Timing(n, float(m), float(q), float(r)) for n, m, q, r in rows]
