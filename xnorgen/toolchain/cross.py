"""Cross builds: `make` a generated library with its target's toolchain, measure it, check
that it fits a part's memory, and run a C harness against it (natively or under the
target's `run` prefix, e.g. qemu-aarch64).

Needs: the files codegen.render produced, a Target (targets/*.yaml) and, for measuring or
running, the target's compiler and binutils on PATH.
Guarantees: nothing here writes outside the directories it is given or creates; every
failure of a tool is an XnorgenError naming the tool and its last line of output.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from xnorgen.errors import XnorgenError
from xnorgen.plan.core import Plan
from xnorgen.target import Target, tool
from xnorgen.toolchain.harness import render_io

#: Symbols a firmware library may leave undefined: the C library's block copies, and libm.
ALLOWED_UNDEFINED = frozenset({"memcpy", "memset", "memmove"})
LIBM = frozenset({"expf", "exp", "fabsf", "fabs", "sqrtf", "sqrt", "logf", "log", "floorf", "ceilf",
                  "fmaxf", "fminf", "powf", "tanhf"})

#: Code-size estimate (bytes of Thumb-2 / machine code) when no cross compiler measures it:
#: the shared helpers and driver, plus one specialized kernel per layer. Calibrated on
#: arm-none-eabi-gcc -O2 builds of tests/netgen networks (260-330 B per kernel, ~600 B of
#: helpers); an xnor conv inlines xg_swar.h's unrolled 4-filter block once per tap range, which
#: measured up to ~1.7 KiB a kernel (cifar_xnor, digits_xnor). Deliberately on the high side,
#: since a fit check must not pass wrongly.
CODE_BASE_BYTES = 1024
CODE_PER_KERNEL_BYTES = 512
CODE_PER_XNOR_CONV_BYTES = 1792


@dataclass
class SizeReport:
    target: str
    flash_bytes: int              # text + rodata (+ initialized data, which is 0 here)
    ram_bytes: int                # arena + input/output buffers + data + bss + stack
    arena_bytes: int
    io_bytes: int                 # the caller's input and output float buffers
    weight_bytes: int             # const arrays (part of flash)
    measured: bool                # True: flash from the size tool on lib<name>.a
    estimate_flash_bytes: int     # the plan's estimate, kept next to the measurement
    sections: dict = field(default_factory=dict)   # text/data/bss from the size tool
    stack_bytes: int = 0          # the library's worst-case stack (-fstack-usage; 0: not measured)

    def describe(self) -> str:
        how = f"measured with {self.sections.get('tool', 'size')}" if self.measured else "estimated from the plan"
        stack = f" + stack {self.stack_bytes} B" if self.stack_bytes else ""
        return (f"flash {self.flash_bytes} B ({self.flash_bytes / 1024:.1f} KiB; {how}; weights {self.weight_bytes} B), "
                f"RAM {self.ram_bytes} B ({self.ram_bytes / 1024:.1f} KiB: arena {self.arena_bytes} B + "
                f"input/output {self.io_bytes} B{stack})")


def const_bytes(plan: Plan) -> int:
    """Bytes of every constant array the generated <name>_weights.c defines."""
    from xnorgen.kinds import layer_consts
    return sum(len(c.values) * c.itemsize(plan.target) for lp in plan.layers for c in layer_consts(lp, plan.target, plan))


def estimate_flash(plan: Plan) -> int:
    from xnorgen.codegen.render import kernel_context
    sizes = [CODE_PER_XNOR_CONV_BYTES if lp.kind == "conv_xnor" else CODE_PER_KERNEL_BYTES
             for lp in plan.layers if kernel_context(lp, plan) is not None]
    return const_bytes(plan) + CODE_BASE_BYTES + sum(sizes)


def _run(cmd: list[str], cwd=None, what: str | None = None) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except OSError as e:
        raise XnorgenError(what or cmd[0], f"cannot run {cmd[0]}: {e.strerror}") from None
    if r.returncode != 0:
        tail = (r.stderr.strip() or r.stdout.strip() or f"exit status {r.returncode}").splitlines()[-1]
        raise XnorgenError(what or cmd[0], f"{' '.join(cmd[:2])} failed: {tail}")
    return r


def make_library(files: dict[str, str], directory, target: Target, extra_cflags: str = "") -> Path:
    """Write the generated files into directory and build lib<name>.a with its Makefile."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for fname, text in files.items():
        (d / fname).write_text(text)
    if shutil.which(target.cc) is None:
        raise XnorgenError(f"target {target.name}", f"compiler {target.cc!r} not found on PATH")
    _run(["make", "-s", "-C", str(d), f"CC={target.cc}", f"AR={target.ar}", f"EXTRA_CFLAGS={extra_cflags}"],
         what=f"build for {target.name}")
    libs = sorted(d.glob("lib*.a"))
    if not libs:
        raise XnorgenError(f"build for {target.name}", "make produced no lib*.a")
    return libs[0]


def section_sizes(lib, target: Target) -> dict:
    """Berkeley text/data/bss totals of an archive (`size -t`; rodata is counted in text)."""
    size = tool(target, "size")
    if shutil.which(size) is None:
        raise XnorgenError(f"target {target.name}", f"{size!r} not found on PATH")
    out = _run([size, "-t", str(lib)]).stdout.strip().splitlines()
    text, data, bss = (int(v) for v in out[-1].split()[:3])   # the (TOTALS) line
    return {"text": text, "data": data, "bss": bss, "tool": size}


def stack_bytes(directory, name: str) -> int:
    """The library's worst-case stack from gcc's -fstack-usage files (<name>.su): <name>_infer's
    frame plus the largest frame of anything it calls (kernels call only inlined hooks, so the
    call depth below infer is one; libm's expf, which softmax calls, adds its own few words and
    is not counted). A function with a dynamic frame is an error: the library has none."""
    frames = {}
    for line in (Path(directory) / f"{name}.su").read_text().splitlines():
        where, nbytes, kind = line.rsplit("\t", 2)
        if "dynamic" in kind:
            raise XnorgenError(where, f"a dynamic stack frame ({kind}) in generated code")
        frames[where.rsplit(":", 1)[-1]] = int(nbytes)
    infer = frames.pop(f"{name}_infer", 0)
    return infer + max(frames.values(), default=0)


def undefined_symbols(lib, target: Target) -> set[str]:
    """Symbols the archive uses but none of its members defines."""
    nm = tool(target, "nm")
    undef = {ln.split()[-1] for ln in _run([nm, "-u", str(lib)]).stdout.splitlines() if ln.strip().startswith("U ")}
    defined = {ln.split()[-1] for ln in _run([nm, "--defined-only", str(lib)]).stdout.splitlines()
               if len(ln.split()) == 3}
    return undef - defined


def size_report(plan: Plan, files: dict[str, str], measure: bool = True) -> SizeReport:
    """Flash and RAM a network needs on its target: measured when the toolchain is here, else estimated."""
    t = plan.target
    io = 4 * (plan.input_size + plan.output_size)
    est = estimate_flash(plan)
    rep = SizeReport(t.name, est, plan.arena_size + io, plan.arena_size, io, const_bytes(plan), False, est)
    can_measure = measure and shutil.which(t.cc) and shutil.which(tool(t, "size")) and shutil.which("make")
    if can_measure:
        with tempfile.TemporaryDirectory(prefix="xnorgen-size-") as d:
            s = section_sizes(make_library(files, d, t, "-fstack-usage"), t)
            rep.stack_bytes = stack_bytes(d, plan.net.name)
        rep.sections, rep.measured = s, True
        rep.flash_bytes = s["text"] + s["data"]
        rep.ram_bytes = plan.arena_size + io + s["data"] + s["bss"] + rep.stack_bytes
    return rep


def check_fit(rep: SizeReport, flash_kib: float | None, ram_kib: float | None, where: str) -> None:
    """Raise a one-line XnorgenError if the report exceeds the part's flash or RAM."""
    over = []
    if flash_kib is not None and rep.flash_bytes > flash_kib * 1024:
        over.append(f"flash {rep.flash_bytes / 1024:.1f} KiB > {flash_kib:g} KiB")
    if ram_kib is not None and rep.ram_bytes > ram_kib * 1024:
        over.append(f"RAM {rep.ram_bytes / 1024:.1f} KiB (arena {rep.arena_bytes} B + input/output "
                    f"{rep.io_bytes} B) > {ram_kib:g} KiB")
    if over:
        raise XnorgenError(where, f"does not fit the {rep.target} part: {'; '.join(over)} "
                                  "(a larger part: --flash-kib/--ram-kib)")


# --- running a harness -------------------------------------------------------------------

def build_harness(directory, name: str, target: Target, extra_cflags: tuple[str, ...] = (),
                  pool: bool = False) -> Path:
    """Compile a C main against <name>.h and lib<name>.a in directory with the target's compiler
    (extra_cflags after the target's, e.g. the sanitizers the library was built with). pool: also
    link xg_pool.c (a hosted target's thread pool), so run_harness can take `parts`."""
    d = Path(directory)
    (d / "harness.c").write_text(render_io(name, pool=pool))
    exe = d / "harness"
    threads = [str(d / "xg_pool.c"), "-pthread"] if pool else []
    _run([target.cc, *target.cflags, *extra_cflags, "-Wall", "-Wextra", "-Werror", "-I", str(d),
          str(d / "harness.c"), *threads, "-L", str(d), f"-l{name}", "-lm", "-o", str(exe)],
         what=f"harness for {target.name}")
    return exe


def run_harness(exe, target: Target, x, parts: int | None = None):
    """Run the harness on a batch x (first axis = samples) under the target's `run` prefix;
    returns the outputs as a float32 array [samples, OUTPUT_SIZE]. parts (a harness built with
    pool): through <name>_infer_parallel with that many parts and threads; -1: the whole batch
    in one <name>_infer_batch call."""
    import numpy as np
    d = Path(exe).parent
    x = np.ascontiguousarray(x, dtype=np.float32)
    (d / "x.bin").write_bytes(x.tobytes())
    extra = [str(int(parts))] if parts else []
    _run([*target.run, str(exe), str(d / "x.bin"), str(d / "y.bin"), str(len(x)), *extra], what=f"run on {target.name}")
    return np.frombuffer((d / "y.bin").read_bytes(), dtype=np.float32).reshape(len(x), -1)
