"""Firmware images for targets without an OS (cortex-m4): the library, the firmware kit in
templates/firmware/ (vector table and start-up, a linker script) and the harness's firmware main,
linked into one ELF that an emulator (the target's `run`: qemu-system-arm -M mps2-an386) runs.

The kit is the template a user copies (docs/firmware.md); here it proves the library runs on the
core it was built for and gives `xnorgen run --target cortex-m4` the target's own bits.
"""
from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path

import numpy as np

from xnorgen.errors import XnorgenError
from xnorgen.target import Target
from xnorgen.toolchain.harness import render_io

#: Seconds an emulated run may take before it is stopped (a fault parks the core in a loop).
RUN_TIMEOUT = 600


def kit_file(fname: str) -> str:
    """A file of the firmware kit (templates/firmware/)."""
    return (resources.files("xnorgen.templates") / "firmware" / fname).read_text()


def can_run(target: Target) -> bool:
    """True if this machine can build and emulate firmware for target."""
    return bool(target.firmware and target.run) and all(
        shutil.which(p) for p in (target.cc, target.run[0], "make"))


def build_firmware(directory, name: str, target: Target) -> Path:
    """Link directory/lib<name>.a (make it first) with the kit and the firmware harness into
    directory/<name>.elf; returns its path."""
    d = Path(directory)
    script = target.firmware["linker_script"]
    (d / "startup.c").write_text(kit_file("startup.c"))
    (d / script).write_text(kit_file(script))
    (d / "main.c").write_text(render_io(name, firmware=True))
    elf = d / f"{name}.elf"
    cmd = [target.cc, *target.cflags, "-Wall", "-Wextra", "-Werror", "-I", str(d), str(d / "startup.c"), str(d / "main.c"),
           "-nostartfiles", "--specs=rdimon.specs", "-T", str(d / script), "-Wl,--gc-sections",
           "-L", str(d), f"-l{name}", "-lm", "-o", str(elf)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise XnorgenError(f"target {target.name}", f"linking the firmware failed: {r.stderr.strip()[:300]}")
    return elf


def run_firmware(elf, target: Target, x) -> np.ndarray:
    """Run the image on the emulated part with the batch x (first axis = samples), through
    semihosting files in the image's directory; returns [samples, OUTPUT_SIZE] float32."""
    d = Path(elf).parent
    x = np.ascontiguousarray(x, dtype=np.float32)
    (d / "xg_in.bin").write_bytes(x.tobytes())
    out = d / "xg_out.bin"
    out.unlink(missing_ok=True)
    try:
        r = subprocess.run([*target.run, str(elf)], cwd=d, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise XnorgenError(f"target {target.name}", f"the emulated run took over {RUN_TIMEOUT} s; stopped") from None
    if r.returncode != 0 or not out.exists():
        raise XnorgenError(f"target {target.name}", f"the firmware failed (exit {r.returncode}): "
                           f"{(r.stderr or r.stdout).strip()[:300] or 'no output'}")
    y = np.frombuffer(out.read_bytes(), dtype=np.float32)
    return y.reshape(len(x), -1)


def measure(net, target: Target, workdir, x=None) -> dict[str, int]:
    """{kernel: instructions} of one inference on the emulated part, counted with SysTick under
    qemu -icount (harness mode count; calibrated by a loop of known length in the same run).
    Keys as sim.callgrind.measure: a layer kernel by its layer's C ident, a standalone binarize
    stage as "binarize_<ident>" (the simulator's LayerResult.ident); "infer": the whole call,
    timed separately (the kernels' sum must come close). Uses the network's weights."""
    from xnorgen.api import compile_network
    from xnorgen.codegen.render import kernel_contexts
    from xnorgen.naming import infer_symbol, kernel_symbol
    from xnorgen.toolchain.cross import make_library
    from xnorgen.toolchain.harness import render_count

    d = Path(workdir)
    d.mkdir(parents=True, exist_ok=True)
    plan, files = compile_network(net, target)
    make_library(files, d, target)            # writes the sources too
    prefix = kernel_symbol(net.name, "")
    calls = [(k["fn"], k["call"]) for k in kernel_contexts(plan)]
    calls.append((infer_symbol(net.name), f"{infer_symbol(net.name)}(input, output, a)"))   # the whole, checked
    script = target.firmware["linker_script"]
    (d / "startup.c").write_text(kit_file("startup.c"))
    (d / script).write_text(kit_file(script))
    (d / "count.c").write_text(render_count(net.name, calls))
    elf = d / "count.elf"
    cmd = [target.cc, *target.cflags, "-I", str(d), str(d / "startup.c"), str(d / "count.c"),
           str(d / f"{net.name}_weights.c"), "-nostartfiles", "--specs=rdimon.specs", "-T", str(d / script),
           "-Wl,--gc-sections", "-lm", "-o", str(elf)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise XnorgenError(f"target {target.name}", f"linking the counting image failed: {r.stderr.strip()[:300]}")
    if x is None:
        x = np.random.default_rng(1).uniform(-0.5, 0.5, plan.input_size)
    (d / "xg_in.bin").write_bytes(np.ascontiguousarray(x, dtype=np.float32).tobytes())
    run = [*target.run[:-1], "-icount", "shift=0", target.run[-1], str(elf)]
    r = subprocess.run(run, cwd=d, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    lines = [ln.split("\t") for ln in r.stdout.splitlines() if "\t" in ln]
    if r.returncode != 0 or not lines or lines[0][0] != "calibration":
        raise XnorgenError(f"target {target.name}", f"the counting run failed (exit {r.returncode}): "
                           f"{(r.stderr or r.stdout).strip()[:300]}")
    per_tick = int(lines[0][1]) / int(lines[0][2])
    counts = {}
    for fn, ticks in lines[1:]:
        if fn == infer_symbol(net.name):
            counts["infer"] = round(int(ticks) * per_tick)
            continue
        ident = fn[len(prefix):] if fn.startswith(prefix) else fn[len(net.name) + 1:]
        counts[ident] = round(int(ticks) * per_tick)
    return counts
