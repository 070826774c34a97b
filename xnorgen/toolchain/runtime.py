"""Stage 6, run: the compiled library as a Python callable."""
from __future__ import annotations

import json

import numpy as np

from xnorgen.naming import infer_symbol
from xnorgen.plan.core import Plan
from xnorgen.reference import split_batch


class CompiledNetwork:
    """A network compiled for this machine: call it on one sample or a batch (first axis)."""

    def __init__(self, plan: Plan, files: dict[str, str], module):
        self.plan, self.files, self._mod = plan, files, module
        name = plan.net.name
        self.name = name
        self.input_shape = tuple(plan.net.input_shape)
        self.output_shape = tuple(plan.net.output_shape)
        self.arena_size = int(getattr(module.lib, f"{name.upper()}_ARENA_SIZE"))
        self._infer = getattr(module.lib, infer_symbol(name))
        assert int(getattr(module.lib, f"{name.upper()}_INPUT_SIZE")) == plan.input_size

    @property
    def manifest(self) -> dict:
        return json.loads(self.files["manifest.json"])

    def new_arena(self) -> np.ndarray:
        """A 64-byte-aligned arena of exactly ARENA_SIZE bytes (a view into a larger buffer)."""
        raw = np.zeros(self.arena_size + 64, dtype=np.uint8)
        start = (-raw.ctypes.data) % 64
        return raw[start:start + self.arena_size]

    def bind(self, x: np.ndarray, out: np.ndarray, arena: np.ndarray | None = None):
        """A zero-argument callable running one sample from x into out with a fixed arena (a new
        one unless given): the lowest-overhead way to call the library repeatedly (benchmarks)."""
        assert x.dtype == np.float32 and x.size == self.plan.input_size and x.flags.c_contiguous
        assert out.dtype == np.float32 and out.size == self.plan.output_size and out.flags.c_contiguous
        ffi = self._mod.ffi
        arena = self.new_arena() if arena is None else arena
        px, po = ffi.from_buffer("float[]", x), ffi.from_buffer("float[]", out)
        pa = ffi.cast("void *", arena.ctypes.data) if self.arena_size else ffi.NULL
        infer = self._infer

        def run():
            return infer(px, po, pa)
        run.arena = arena            # keep the arena alive as long as the callable
        return run

    def __call__(self, x) -> np.ndarray:
        """Outputs (float32) for one sample of the input shape or a batch on a first axis. x must
        hold finite real numbers (integer or float dtype; split_batch refuses anything else with
        an XnorgenError): the C entry point itself leaves non-finite inputs unspecified."""
        samples, is_batch = split_batch(self.plan.net, x)
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        out = np.empty((len(samples),) + self.output_shape, dtype=np.float32)
        arena = self.new_arena()                 # one arena serves every sample in turn
        for i, s in enumerate(samples):
            rc = self.bind(s, out[i], arena)()
            if rc != 0:
                raise RuntimeError(f"{infer_symbol(self.name)} returned {rc}")
        return out if is_batch else out[0]
