"""Targets are data: targets/*.yaml, one file each. This module only reads and resolves them."""
from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from xnorgen.errors import XnorgenError


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    arch: tuple[str, ...]
    requires_cpu: tuple[str, ...]
    priority: int
    cc: str
    ar: str
    cflags: tuple[str, ...]
    word_bits: int
    vector_bits: int
    popcount: str
    cache: dict = field(hash=False)
    clock_ghz: float = 1.0
    costs: dict = field(default_factory=dict, hash=False)
    # The simulator's out-of-order model ({issue_width, resources: {name: {units, ops: {class:
    # cycles}}}}, sim/ops.port_cycles); empty: cycles are the sum of `costs` (in-order cores).
    ports: dict = field(default_factory=dict, hash=False)
    # Command prefix that executes this target's Linux binaries on another machine
    # (e.g. qemu-aarch64 -L /usr/aarch64-linux-gnu); empty: native only.
    run: tuple[str, ...] = ()
    # Binutils for the size report and symbol checks ({size: ..., nm: ..., objdump: ...}).
    tools: dict = field(default_factory=dict, hash=False)
    # A firmware part's declared memory ({flash_kib: ..., ram_kib: ...}); empty: no fit check.
    memory: dict = field(default_factory=dict, hash=False)
    # True if the target has an OS and libc (a harness with stdio can run under `run`).
    hosted: bool = True
    # A part without an OS: how to make a runnable image of the library (xnorgen.toolchain.firmware)
    # -- {board: the emulated board, linker_script: a file of templates/firmware/}; `run` is then
    # the emulator command that takes the image last.
    firmware: dict = field(default_factory=dict, hash=False)
    # Filters per register block of the binary kernels; 0: one vector of words (at least 4).
    filter_block: int = 0
    # Filters per block of the float/bwn convs and dense layers; 0: one vector of float32 lanes
    # (at least 4). Two vectors give each broadcast input twice the FMAs (tiling.pixel_block then
    # halves the pixels, to keep the accumulators in registers).
    float_block: int = 0
    # Bwn convs expand a filter block's sign masks into +1.0 / -1.0 floats (an arena buffer of
    # one block's weights, C*KH*KW*XG_FFB floats) and run the float conv's kernels on them: exact
    # (x * +-1 is), as fast as a float conv, weights still one bit each in flash. Off: the masks
    # are read as they are (no RAM for weights: microcontrollers).
    bwn_expand: bool = False
    # Hosted targets: dense layers get a batch variant that <name>_infer_batch runs over blocks of
    # 16 samples, reading the weights once per block (docs/threads.md). It pays where a dense layer
    # is bound by streaming its weights; where the popcounts bound it, it does not (AVX2 here: FC
    # 4096 -13 %, benchmarks/RESULTS.md), so it is off unless a target (or `tune`) turns it on.
    batch_dense: bool = False
    # True if the target has fused multiply-add: float conv/dense taps accumulate as fmaf (one
    # rounding), through the ISA header's XG_VFMA where it defines one.
    fma: bool = False
    # True if the ISA loads two neighbouring registers in one instruction (AArch64 LDP): gcc pairs
    # the scalar input loads of a float window and the weight vectors of unrolled runs. Only the
    # simulator's instruction counts use it (measured: docs/firmware.md).
    paired_loads: bool = False
    # True if gcc walks arrays with post-indexed loads (AArch64 `ldr q2, [x5], #16`): a runtime
    # loop over taps then needs no add of its own (the simulator's instruction counts).
    post_index: bool = False
    # Interior outputs of a stride-1 xnor conv with one word per pixel computed as vector lanes
    # (XG_PX neighbouring pixels per vector group, outputs stored contiguously); 0: off.
    pixel_lanes: int = 0
    # Fold a max pool into the float/bwn conv before it (fusion.plan_epilogues): the conv's output
    # is never stored (ResNet-18's arena 4.0 -> 1.7 MB) but the pooling runs inside the conv's
    # row loop, which measured 12 % slower than the separate pool on avx512: for RAM-bound parts.
    fold_pool: bool = False
    # Xnor convs with filters in the lanes (the per-pixel block path): collect this many
    # consecutive outputs of a filter block in a tile and store it transposed, one contiguous run
    # per filter (xg_tile_store; a fused binarize epilogue's A: xg_tile_accumulate), instead of
    # one scattered store per output; 0: off. Only on convs with enough outputs (tiling.store_tile).
    store_tile: int = 0
    # Xnor dense layers read their packed weights once, front to back: prefetch each line this many
    # bytes ahead (xg_xor_popcount_stream); 0: off. Only where the weights are longer than that
    # (tiling.stream_prefetch).
    stream_prefetch: int = 0
    # Xnor convs on the per-pixel path fetch a filter block's weights at its first pixel, then
    # reuse them from L1: where a block has at least this many cache lines of weights per output
    # pixel, each pixel prefetches its share of the next block's lines (tiling.next_block_prefetch);
    # 0: off.
    block_prefetch: int = 0
    # What `xnorgen tune` measured to choose this target's knobs ({network, knobs, trials, ...});
    # empty for a target as shipped. Carried into manifest.json.
    tuned: dict = field(default_factory=dict, hash=False)
    # The hooks the target's ISA header (templates/isa/xg_<popcount>.h) defines itself, each with
    # the configuration it needs ({hook: {config value: required value}}; xnorgen.plan.hooks lists
    # the configuration values). Every other hook is xg_common.h's portable one. The simulator
    # prices a hook by who provides it; tests/test_isa_headers.py holds this list equal to what
    # the header's preprocessor defines (XG_HAVE_<HOOK>) for each configuration.
    hooks: dict = field(default_factory=dict, hash=False)
    # Instructions one libm call takes on this target, measured ({"exp": n}: expf); the simulator
    # counts a call as that many instructions (sim.ops.lower_libm). Empty: priced by `costs`.
    libm: dict = field(default_factory=dict, hash=False)

    @property
    def word_bytes(self) -> int:
        return self.word_bits // 8


def target_dirs() -> list[Path]:
    """The shipped targets/ plus any directories in $XNORGEN_TARGETS (os.pathsep-separated)."""
    extra = [Path(p) for p in os.environ.get("XNORGEN_TARGETS", "").split(os.pathsep) if p]
    return [Path(str(resources.files("xnorgen.targets")))] + extra


_PARSED: dict[tuple, dict] = {}     # (path, mtime, size) -> the yaml's data: each file parsed once


def _parse(f: Path) -> dict:
    st = f.stat()
    key = (str(f), st.st_mtime_ns, st.st_size)
    if key not in _PARSED:
        _PARSED[key] = yaml.safe_load(f.read_text())
    return _PARSED[key]


def all_targets() -> dict[str, Target]:
    """Every target by name; a user directory may add targets or replace shipped ones."""
    out = {}
    for f in [f for d in target_dirs() for f in sorted(d.glob("*.yaml"))]:
        try:
            d = _parse(f)
            d = {**d, **{k: tuple(d.get(k, ())) for k in ("arch", "requires_cpu", "cflags", "run")}}
            _check_ports(d.get("ports") or {})
            _check_float_block(d.get("float_block", 0))
            _check_tools(d)
            _check_hooks(d.get("hooks") or {})
            for key, word in (d.get("firmware") or {}).items():
                if not isinstance(word, str) or not _TOOL_WORD.match(word):
                    raise TypeError(f"firmware.{key} must be a plain word, not {word!r}")
            out[d["name"]] = Target(**d)
        except (OSError, yaml.YAMLError, TypeError, KeyError) as e:
            raise XnorgenError(str(f), f"invalid target description: {e}") from None
    return out


#: What a target's name, tools and flags may hold: they reach a Makefile and a command line.
_TOOL_WORD = re.compile(r"[A-Za-z0-9_.,=+/:@-]+\Z")


def _check_tools(d: dict) -> None:
    """name, cc, ar, cflags and run are plain words (no space, quote, $ or ;), so a target file
    cannot smuggle shell or make syntax into the generated Makefile (TypeError names the field)."""
    for key in ("name", "cc", "ar"):
        if not isinstance(d.get(key), str) or not _TOOL_WORD.match(d[key]):
            raise TypeError(f"{key} must be one plain word, got {str(d.get(key))[:60]!r}")
    for key in ("cflags", "run"):
        for word in d[key]:
            if not isinstance(word, str) or not _TOOL_WORD.match(word):
                raise TypeError(f"{key}: {str(word)[:60]!r} is not one plain word")


def _check_ports(ports: dict) -> None:
    """A `ports` table the simulator can use: issue_width > 0 and resources of units > 0, each
    mapping operation classes to cycles (KeyError / TypeError name what is wrong)."""
    if not ports:
        return
    if not isinstance(ports.get("issue_width"), (int, float)) or ports["issue_width"] <= 0:
        raise TypeError("ports: issue_width must be a positive number")
    for name, r in (ports.get("resources") or {}).items():
        if not isinstance(r, dict) or not isinstance(r.get("units"), (int, float)) or r["units"] <= 0 \
                or not isinstance(r.get("ops"), dict):
            raise TypeError(f"ports: resource {name!r} needs units > 0 and ops {{class: cycles}}")


#: The configuration a hook's requirements may name (xnorgen.plan.hooks.isa_config's keys).
HOOK_CONFIG = ("word_bits", "filter_block", "filter_block_multiple_of", "float_block", "pixel_lanes",
               "lane_filters", "store_tile", "binarize_tile", "sum_lanes")


def _check_hooks(hooks) -> None:
    """hooks: {identifier: {a HOOK_CONFIG key: integer}}."""
    if not isinstance(hooks, dict):
        raise TypeError(f"hooks must be a mapping of hook name to requirements, not {hooks!r}")
    for name, req in hooks.items():
        if not (isinstance(name, str) and re.fullmatch(r"[a-z][a-z0-9_]*", name)):
            raise TypeError(f"hook name {name!r} is not a lower-case identifier")
        if not isinstance(req, dict) or any(k not in HOOK_CONFIG or not isinstance(v, int) for k, v in req.items()):
            raise TypeError(f"hook {name}: requirements must map {', '.join(HOOK_CONFIG)} to integers")


def _check_float_block(ffb) -> None:
    """float_block: 0 (one vector) or a positive multiple of 4 filters (the weights' lanes)."""
    if not isinstance(ffb, int) or ffb < 0 or ffb % 4:
        raise TypeError(f"float_block must be 0 or a positive multiple of 4, not {ffb!r}")


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def runs_here(t: Target) -> bool:
    """True if code for t executes natively on this machine."""
    return platform.machine() in t.arch and set(t.requires_cpu) <= _cpu_flags()


def tool(t: Target, name: str) -> str:
    """A binutils program for t: the yaml's `tools` entry, else the compiler's prefix + name."""
    if name in t.tools:
        return t.tools[name]
    cc = Path(t.cc).name
    return cc[: -len("gcc")] + name if cc.endswith("gcc") else name


def executes_here(t: Target) -> bool:
    """True if binaries for t run on this machine: natively, or through its `run` prefix (qemu)."""
    import shutil
    if runs_here(t):
        return True
    return bool(t.run) and t.hosted and shutil.which(t.run[0]) is not None and shutil.which(t.cc) is not None


def resolve(name: str) -> Target:
    """A target by name; 'host' is the highest-priority target this machine runs."""
    targets = all_targets()
    if name == "host":
        here = [t for t in targets.values() if runs_here(t)]
        if not here:
            raise XnorgenError("target host", f"no target runs on this {platform.machine()} machine")
        return max(here, key=lambda t: t.priority)
    if name not in targets:
        raise XnorgenError(f"target {name}", f"unknown target (known: host, {', '.join(targets)})")
    return targets[name]
