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
