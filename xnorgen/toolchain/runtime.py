"""Stage 6, run: the compiled library as a Python callable."""
from __future__ import annotations

import json
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from xnorgen.codegen.render import BATCH_BLOCK
from xnorgen.errors import XnorgenError
from xnorgen.naming import infer_symbol
from xnorgen.plan.core import Plan
from xnorgen.reference import bad_value, split_batch


_POOL_LOCK = threading.Lock()


class _NotFinite(Exception):
    """Sample `sample` (of the call's batch) has a value that is not finite at flat `index`."""

    def __init__(self, sample: int, index: int):
        super().__init__(sample, index)
        self.sample, self.index = sample, index


def cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class CompiledNetwork:
    """A network compiled for this machine: call it on one sample or a batch (first axis).

    threads (None: every core this process may use): a batch is split into runs of consecutive
    samples, one per thread with its own arena (cffi releases the GIL during the C call); the
    samples left over when the batch is not a multiple of `threads` (one sample, say) run one
    at a time through <name>_infer_parallel, each kernel split over the threads of an xg_pool
    (templates/host/xg_pool.c). Either way the bits are those of one thread. Arenas are kept per
    calling thread and reused (the C needs no zeroed arena)."""

    def __init__(self, plan: Plan, files: dict[str, str], module, threads: int | None = 1):
        self.plan, self.files, self._mod = plan, files, module
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise XnorgenError("threads", f"expected a positive integer or None, got {threads!r}")
        self.threads = cores() if threads is None else threads
        self._local = threading.local()
        name = plan.net.name
        self.name = name
        self.input_shape = tuple(plan.net.input_shape)
        self.output_shape = tuple(plan.net.output_shape)
        self.arena_size = int(getattr(module.lib, f"{name.upper()}_ARENA_SIZE"))
        self._infer = getattr(module.lib, infer_symbol(name))
        self._infer_parallel = getattr(module.lib, infer_symbol(name) + "_parallel", None)
        # the batch entry point, where a dense layer has a batch variant (target knob batch_dense);
        # elsewhere it would only spread a batch's tensors over one arena per sample
        batched = plan.target.batch_dense and any(lp.kind == "dense" for lp in plan.layers)
        self._infer_batch = getattr(module.lib, infer_symbol(name) + "_batch", None) if batched else None
        self.arena_stride = int(getattr(module.lib, f"{name.upper()}_ARENA_STRIDE", 0))
        self._xg_pool, self._xg_pool_lock = None, threading.Lock()
        self._pool, self._finalizers, self._pools_pid = None, [], os.getpid()
        assert int(getattr(module.lib, f"{name.upper()}_INPUT_SIZE")) == plan.input_size

    @property
    def manifest(self) -> dict:
        return json.loads(self.files["manifest.json"])

    def new_arena(self, nbytes: int | None = None) -> np.ndarray:
        """A 64-byte-aligned arena of exactly ARENA_SIZE (or nbytes) bytes (a view into a larger buffer)."""
        nbytes = self.arena_size if nbytes is None else nbytes
        raw = np.zeros(nbytes + 64, dtype=np.uint8)
        start = (-raw.ctypes.data) % 64
        return raw[start:start + nbytes]

    def _pointer(self, arena: np.ndarray):
        """An arena as the C's void * (NULL for a network without one)."""
        ffi = self._mod.ffi
        return ffi.cast("void *", arena.ctypes.data) if self.arena_size else ffi.NULL

    def _returned(self, rc: int, entry: str = "") -> None:
        """The C entry point <name>_infer<entry> returned rc: anything but 0 is a bug here."""
        if rc != 0:
            raise RuntimeError(f"{infer_symbol(self.name)}{entry} returned {rc}")

    def bind(self, x: np.ndarray, out: np.ndarray, arena: np.ndarray | None = None):
        """A zero-argument callable running one sample from x into out with a fixed arena (a new
        one unless given): the lowest-overhead way to call the library repeatedly (benchmarks)."""
        assert x.dtype == np.float32 and x.size == self.plan.input_size and x.flags.c_contiguous
        assert out.dtype == np.float32 and out.size == self.plan.output_size and out.flags.c_contiguous
        ffi = self._mod.ffi
        arena = self.new_arena() if arena is None else arena
        px, po, pa = ffi.from_buffer("float[]", x), ffi.from_buffer("float[]", out), self._pointer(arena)
        infer = self._infer

        def run():
            return infer(px, po, pa)
        run.arena = arena            # keep the arena alive as long as the callable
        return run

    def _forget_pools_after_fork(self) -> None:
        """In a child made by fork (multiprocessing's default on Linux) the parent's pool threads do
        not exist: waiting for them would hang, joining them would be undefined. Drop both pools
        without touching them (an xg_pool struct leaks, a few hundred bytes); new ones are made on
        first use. Call with _POOL_LOCK held."""
        if self._pools_pid != os.getpid():
            for f in self._finalizers:
                f.detach()
            self._pool, self._xg_pool, self._finalizers = None, None, []
            self._xg_pool_lock, self._pools_pid = threading.Lock(), os.getpid()

    def _workers(self) -> ThreadPoolExecutor:
        """The library's thread pool, made on first use and kept (its threads keep their arenas)."""
        with _POOL_LOCK:
            self._forget_pools_after_fork()
            if self._pool is None:
                # threads - 1 workers: the caller runs one share itself (_run_all)
                self._pool = ThreadPoolExecutor(max(1, self.threads - 1), thread_name_prefix=f"xnorgen-{self.name}")
                # its threads end with the library
                self._finalizers.append(weakref.finalize(self, self._pool.shutdown, wait=False))
        return self._pool

    def _parallel_pool(self):
        """The library's xg_pool of `threads` threads, made on first use (None: no parallel entry
        point on this target, or one thread)."""
        if self._infer_parallel is None or self.threads < 2:
            return None
        with _POOL_LOCK:
            self._forget_pools_after_fork()
            if self._xg_pool is None:
                lib = self._mod.lib
                pool = lib.xg_pool_create(self.threads)
                if pool == self._mod.ffi.NULL:
                    raise RuntimeError(f"xg_pool_create({self.threads}) failed: cannot start threads")
                self._xg_pool = pool
                self._finalizers.append(weakref.finalize(self, lib.xg_pool_destroy, pool))
        return self._xg_pool

    def _input(self, sample: np.ndarray, k: int, check: bool):
        """sample as a C pointer; with check, its values proven finite first (in C, just before the
        kernels read them: raises _NotFinite naming sample k)."""
        p = self._mod.ffi.from_buffer("float[]", sample)
        if check:
            i = self._mod.lib.xg_first_nonfinite(p, sample.size)
            if i >= 0:
                raise _NotFinite(k, int(i))
        return p

    def _run_parallel(self, samples: np.ndarray, out: np.ndarray, first: int = 0, check: bool = False) -> None:
        """samples[i] -> out[i] in order, each split over the pool's threads; on one thread if
        another caller is using the pool (one pool runs one parallel-for at a time). `first`: the
        index of samples[0] in the call's batch (for errors); check: see _input."""
        pool = self._parallel_pool()
        if pool is None or not self._xg_pool_lock.acquire(blocking=False):
            return self._run(samples, out, first, check)
        try:
            ffi = self._mod.ffi
            pa = self._arena_ptr()
            pfor = ffi.addressof(self._mod.lib, "xg_pool_parallel_for")
            for k, (s, o) in enumerate(zip(samples, out)):
                self._returned(self._infer_parallel(self._input(s, first + k, check), ffi.from_buffer("float[]", o),
                                                    pa, self.threads, pfor, pool), "_parallel")
        finally:
            self._xg_pool_lock.release()

    def _arena(self, samples: int = 1) -> np.ndarray:
        """This thread's arena, for one sample or (<name>_infer_batch) `samples` of them, made once
        and reused (at least ARENA_SIZE bytes, or samples x ARENA_STRIDE)."""
        arena = getattr(self._local, "arena", None)
        need = self.arena_size if samples == 1 else samples * self.arena_stride
        if arena is None or arena.size < need:
            arena = self._local.arena = self.new_arena(need)
            self._local.arena_ptr = self._pointer(arena)
        return arena

    def _arena_ptr(self, samples: int = 1):
        """This thread's arena (_arena) as a C pointer, kept with it (numpy's .ctypes costs µs)."""
        self._arena(samples)
        return self._local.arena_ptr

    def _run(self, samples: np.ndarray, out: np.ndarray, first: int = 0, check: bool = False) -> None:
        """samples[i] -> out[i] in order, on the calling thread with its arena: blocks of
        BATCH_BLOCK samples through <name>_infer_batch where dense layers are batched, else one by
        one. first, check: as _run_parallel's."""
        ffi = self._mod.ffi
        if self._infer_batch is not None and len(samples) > 1:
            pa = self._arena_ptr(BATCH_BLOCK)
            for i in range(0, len(samples), BATCH_BLOCK):
                s, o = samples[i:i + BATCH_BLOCK], out[i:i + BATCH_BLOCK]
                for k, sample in enumerate(s):
                    self._input(sample, first + i + k, check)
                self._returned(self._infer_batch(ffi.from_buffer("float[]", s), ffi.from_buffer("float[]", o), len(s),
                                                 pa), "_batch")
            return
        pa = self._arena_ptr()
        for k, (s, o) in enumerate(zip(samples, out)):
            self._returned(self._infer(self._input(s, first + k, check), ffi.from_buffer("float[]", o), pa))

    def _run_all(self, samples: np.ndarray, out: np.ndarray, check: bool) -> None:
        """Whole rounds of samples one run per thread, the rest each on every thread (class doc)."""
        whole = len(samples) // self.threads * self.threads if self.threads > 1 else 0   # fill every thread
        if whole:                                # consecutive runs of samples, one per thread
            bounds = np.linspace(0, whole, self.threads + 1).astype(int)
            pool = self._workers()
            # the caller runs the first share instead of sleeping on the others: one thread fewer
            # to wake, and the OS does not stack the woken ones on the caller's idle core (measured
            # on L1, batch 16, threads=2 after a call on one thread: 2.11 ms -> 1.08 ms, 1 thread 1.86)
            futures = [pool.submit(self._run, samples[a:b], out[a:b], a, check)
                       for a, b in zip(bounds[1:-1], bounds[2:])]
            try:
                self._run(samples[:bounds[1]], out[:bounds[1]], 0, check)
            finally:
                wait(futures)             # every share done before an error (the first one's) is raised
            for f in futures:
                f.result()
        self._run_parallel(samples[whole:], out[whole:], whole, check)   # the rest: each sample on every thread

    def __call__(self, x, out: np.ndarray | None = None) -> np.ndarray:
        """Outputs (float32) for one sample of the input shape or a batch on a first axis. x must
        hold finite real numbers (integer or float dtype; split_batch refuses anything else with
        an XnorgenError): the C entry point itself leaves non-finite inputs unspecified.
        out (optional, as numpy's): a C-contiguous float32 array of the output's shape to write
        into and return; reusing one saves a large output its fresh pages on every call."""
        where = f"{self.name}: input"
        samples, is_batch = split_batch(self.plan.net, x, where, values=False)
        check = samples.dtype == np.float32      # split_batch left its values to _input's C check
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        shape, given = (len(samples),) + self.output_shape, out
        if out is None:
            out = np.empty(shape, dtype=np.float32)
        else:
            want = shape if is_batch else self.output_shape
            if not (isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == want
                    and out.flags.c_contiguous and out.flags.writeable):
                raise XnorgenError(f"{self.name}: out", f"expected a writable C-contiguous float32 array of "
                                   f"shape {list(want)}")
            out = out.reshape(shape)        # a view: the C writes into the caller's array
        try:
            self._run_all(samples, out, check)
        except _NotFinite as e:
            i = np.unravel_index(e.index, self.input_shape)
            raise bad_value(samples, (e.sample, *i), where) if is_batch else bad_value(samples[0], i, where) from None
        if given is not None:
            return given
        return out if is_batch else out[0]
