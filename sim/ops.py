"""Operation classes, loop overhead, and turning counts into cycles with a target's cost table.

Counts are collections.Counter objects keyed by operation class. The classes
are those of a scalar load/store machine executing the generated C:

  load, store      memory accesses (one per scalar or word access)
  load_op          a load folded into an ALU instruction as its memory operand
                   (costs as a load, is not a separate instruction)
  xor, popcount    the binary core; `popcount` is expanded into ALU classes
                   on targets without a popcount instruction (popcount: swar)
  add, compare     integer arithmetic, loop counters, bounds tests
  branch           one per loop iteration (the back edge) or conditional
  shift, logic     bit manipulation (packing, bwn weight bits, SWAR popcount)
  mul              integer multiply (SWAR popcount)
  addr             address arithmetic the source spells out (index products)
  cvt              int <-> float conversion
  fadd, fmul, fdiv, fmax, exp   float32 arithmetic
  vload, vxor, vpopcount, vadd, vlogic   one SIMD instruction on a vector of packed words
                   (FB filter lanes of xg_xor_popcount_block, or a float vector); their cost
                   is the target's per-word cost of the scalar class times the words per vector
                   (the target tables give the binary core's costs per 64-bit word)
  vbcast           one word or float broadcast from memory into a vector (a load on x86 and ARM)
  vshuffle         one lane permute or shuffle (Intel: port 5 only)
  vfmul, vfadd     one SIMD float instruction (a float vector of XG_FFB lanes, or part of it)
  vfma             one SIMD fused multiply-add (float taps on targets with `fma`)
  chain            not an instruction: one step of a loop-carried chain of dependent float adds
                   (a binarize tile's A, |x| of every channel added to one vector), whose
                   latency, not throughput, paces the loop; only the port model charges it
  stream           not an instruction: one 64-byte line of a buffer larger than L2, fetched from
                   beyond it (sim/memory.streamed_lines); only the port model charges it

Two ways to turn counts into cycles, chosen by the target: the cost table's sum (an in-order
core, or a target without `ports`), or the busiest resource of an out-of-order core (`ports`:
units per resource and the classes each one serves, plus the issue width): port_cycles.
"""
from __future__ import annotations

from collections import Counter

#: Classes a target's `costs` table may omit, and the class whose cost they borrow.
ALIASES = {"load_op": "load", "shift": "xor", "logic": "xor", "addr": "add", "fmax": "fadd", "cvt": "fadd",
           "vfmul": "fmul", "vfadd": "fadd", "vfma": "fmul"}
#: Vector classes: cost = (per-word cost of this scalar class) x (64-bit words per vector).
VECTOR = {"vload": "load", "vxor": "xor", "vpopcount": "popcount", "vadd": "xor", "vlogic": "xor", "vbcast": "xor",
          "vshuffle": "xor"}
#: Cycles for classes with no alias and no entry in the target's table (reciprocal throughput
#: of a typical out-of-order core: divide ~4, expf as a ~20-instruction libm call, imul 1).
DEFAULT_COSTS = {"fdiv": 4.0, "exp": 20.0, "mul": 1.0, "chain": 0.0, "stream": 0.0, "libm": 1.0}
#: Classes that mark something about an instruction counted elsewhere, not instructions.
MARKERS = ("load_op", "chain", "stream")

#: SWAR popcount of one word (templates/isa/xg_swar.h): 3 shift-and-mask steps, a multiply.
SWAR_POPCOUNT = {64: Counter(shift=4, logic=4, add=3, mul=1), 32: Counter(shift=4, logic=4, add=3, mul=1)}


def loop(n: int) -> Counter:
    """Overhead of n iterations of a counted loop: increment, compare, branch each."""
    return Counter(add=n, compare=n, branch=n)


def scaled(recipe: dict, n: int) -> Counter:
    """A per-iteration recipe {class: ops} times n iterations."""
    return Counter({k: v * n for k, v in recipe.items() if v * n})


def lower_popcount(counts: Counter, target) -> Counter:
    """Replace `popcount` by its SWAR expansion where the target has no popcount instruction."""
    if target.popcount != "swar" or not counts.get("popcount"):
        return counts
    out = Counter(counts)
    n = out.pop("popcount")
    for k, v in SWAR_POPCOUNT[target.word_bits].items():
        out[k] += v * n
    return out


def lower_libm(counts: Counter, target) -> Counter:
    """Replace a libm call (`exp`: expf) by the instructions it measured on the target
    (Target.libm, e.g. cortex-m4's newlib expf), counted as `libm` instructions of one cycle each;
    where the target gives no figure the call stays one `exp` operation at its cost-table price."""
    per_call = target.libm.get("exp") if target.libm else None
    if not per_call or not counts.get("exp"):
        return counts
    out = Counter(counts)
    out["libm"] += out.pop("exp") * per_call
    return out


def word_lanes(target) -> int:
    """Packed words one vector instruction handles (1 on scalar targets)."""
    return max(1, target.vector_bits // target.word_bits)


def cost_of(cls: str, costs: dict, lanes: int = 1) -> float:
    """Cycles per operation of one class on a target (its table, an alias, or the default)."""
    if cls in VECTOR and cls not in costs:
        return cost_of(VECTOR[cls], costs) * lanes
    if cls in costs:
        return float(costs[cls])
    if cls in ALIASES and ALIASES[cls] in costs:
        return float(costs[ALIASES[cls]])
    return DEFAULT_COSTS.get(cls, 1.0)


def cycles(counts: Counter, target) -> tuple[float, str | None]:
    """The target's model: (cycles, busiest resource) by port_cycles where it describes its ports,
    else (sum_cycles, None)."""
    return port_cycles(counts, target.ports) if target.ports else (sum_cycles(counts, target), None)


def sum_cycles(counts: Counter, target) -> float:
    """sum(count * cost): reciprocal throughputs, no overlap between classes, no stalls."""
    return sum(n * cost_of(k, target.costs, word_lanes(target)) for k, n in counts.items())


def issued(counts: Counter) -> int:
    """Operations through the core's front end: instructions, a compare and the branch after it
    fused into one (x86 macro-fusion, AArch64 cmp+b.cond), a folded load inside its instruction."""
    return instructions(counts) - min(counts.get("compare", 0), counts.get("branch", 0))


def port_cycles(counts: Counter, ports: dict) -> tuple[float, str]:
    """(cycles, busiest resource) on an out-of-order core that overlaps everything independent:
    each resource (a group of execution ports, the load or store units, ...) serves the classes
    it lists, each operation occupying it for the given number of cycles, `units` at a time; the
    front end issues `issue_width` operations per cycle. Cycles are the largest of these bounds:
    a throughput model. It sees the dependency chains the recipes mark (`chain`) and buffers
    larger than L2 (`stream`), if a resource lists them; other chains, cache misses and
    mispredicted branches it does not. A class no resource lists costs only issue slots."""
    bounds = {"issue": issued(counts) / ports["issue_width"]}
    for name, r in ports["resources"].items():
        bounds[name] = sum(counts.get(k, 0) * w for k, w in r["ops"].items()) / r["units"]
    name = max(bounds, key=bounds.get)
    return bounds[name], name


def instructions(counts: Counter) -> int:
    """Predicted dynamic instruction count: one per counted operation, folded loads, chain steps
    and streamed lines (MARKERS) excepted."""
    return int(sum(v for k, v in counts.items() if k not in MARKERS))


def float_lanes(target) -> int:
    """float32 lanes of the SIMD unit gcc auto-vectorizes plain elementwise loops with:
    4 on x86-64 (SSE2 is baseline) and AArch64 (NEON), 1 elsewhere (Cortex-M4 has no float SIMD).
    (Plain loops are vectorized at 128 bits here: -O3 auto-vectorization of the simple kernels.)"""
    return 4 if set(target.arch) & {"x86_64", "AMD64", "aarch64", "arm64"} else 1


def float_vector_lanes(target) -> int:
    """float32 lanes of one instruction on GCC's vector-extension blocks (xg_fvec of XG_FFB lanes):
    the target's vector width (at least SSE2/NEON's 4), 1 without float SIMD."""
    if float_lanes(target) == 1:
        return 1
    return max(4, target.vector_bits // 32)


def simd_kind(target) -> str:
    """The target's vector ISA family: scalar (builtin/swar), avx2, avx512, neon. Only for what
    the compiler does with the portable C (how gcc vectorizes an epilogue); which hook runs is
    xnorgen.plan.hooks.hook_source's answer, from the target data."""
    return {"avx2": "avx2", "avx512": "avx512", "neon": "neon"}.get(target.popcount, "scalar")
