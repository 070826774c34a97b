"""The batch entry point of hosted targets (<name>_infer_batch; issue 19 item 2): n samples in one
call, dense layers (target knob batch_dense) over blocks of samples per pass over their weights,
the bits of <name>_infer on every sample (in an arena of exactly n * ARENA_STRIDE bytes under
ASan: test_sanitizers.py)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import xnorgen
from netgen import random_dag_layers, random_input, random_network, write_net
from xnorgen.api import compile_network
from xnorgen.codegen.render import BATCH_BLOCK
from xnorgen.target import resolve

#: The host target with dense layers batched (off by default: docs/threads.md).
BATCHED = replace(resolve("host"), batch_dense=True)
UNBATCHED = replace(resolve("host"), batch_dense=False)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _batch(lib, x):
    """x through <name>_infer_batch in one call, with an arena of exactly n * ARENA_STRIDE bytes."""
    ffi = lib._mod.ffi
    out = np.empty((len(x), *lib.output_shape), np.float32)
    arena = lib.new_arena(len(x) * lib.arena_stride)
    pa = ffi.cast("void *", arena.ctypes.data) if lib.arena_size else ffi.NULL
    infer_batch = getattr(lib._mod.lib, f"{lib.name}_infer_batch")      # present whatever batch_dense is
    assert infer_batch(ffi.from_buffer("float[]", x), ffi.from_buffer("float[]", out), len(x), pa) == 0
    return out


def _one_by_one(lib, x):
    return np.stack([lib(s) for s in x])


def test_batches_have_the_bits_of_one_sample_at_a_time(tmp_path):
    rng = np.random.default_rng(290)
    dense_batched = 0
    for i in range(3):
        nets = [xnorgen.load(random_network(tmp_path, f"b{i}", rng, output="fc"))]
        shape = (int(rng.choice([1, 3, 64, 65])), int(rng.integers(2, 9)), int(rng.integers(2, 9)))
        nets.append(xnorgen.load(write_net(tmp_path, f"bd{i}", shape, random_dag_layers(rng, shape), rng)))
        for net in nets:
            lib = xnorgen.build(net, target=BATCHED)
            dense_batched += lib.files[f"{net.name}.c"].count("_batch(arg0")
            for n in (1, 2, BATCH_BLOCK + 1, 2 * BATCH_BLOCK + 3):     # partial blocks of samples
                x = random_input(net, rng, batch=n)
                want = _one_by_one(lib, x)
                assert np.array_equal(_batch(lib, x), want), (net.name, n)
                assert np.array_equal(lib(x), want), (net.name, n)       # lib(x) takes the batch path
    assert dense_batched >= 3, "too few dense layers ran batched"


def test_examples_batched_and_threaded():
    for path in ("digits/digits_xnor.yaml", "digits/digits_bwn.yaml", "digits/digits_float.yaml", "cifar_xnor.yaml"):
        net = xnorgen.load(EXAMPLES / path)
        x = np.random.default_rng(2).uniform(-1, 1, (21, *net.input_shape)).astype(np.float32)
        want = _one_by_one(xnorgen.build(net), x)
        assert np.array_equal(_batch(xnorgen.build(net, target=UNBATCHED), x), want), path   # sample by sample
        for threads in (1, 2):
            assert np.array_equal(xnorgen.build(net, target=BATCHED, threads=threads)(x), want), (path, threads)


def test_bad_batch_arguments_are_refused():
    lib = xnorgen.build(EXAMPLES / "cifar_xnor.yaml", target=BATCHED)
    ffi = lib._mod.ffi
    x, out = np.zeros((2, *lib.input_shape), np.float32), np.zeros((2, *lib.output_shape), np.float32)
    arena = lib.new_arena(2 * lib.arena_stride)
    px, po = ffi.from_buffer("float[]", x), ffi.from_buffer("float[]", out)
    assert lib._infer_batch(px, po, -1, ffi.cast("void *", arena.ctypes.data)) == -3
    assert lib._infer_batch(px, po, 2, ffi.cast("void *", arena.ctypes.data + 8)) == -2
    assert lib._infer_batch(px, ffi.NULL, 2, ffi.cast("void *", arena.ctypes.data)) == -1
    assert lib._infer_batch(px, po, 0, ffi.cast("void *", arena.ctypes.data)) == 0


def test_firmware_targets_get_no_batch_code():
    _, files = compile_network(xnorgen.load(EXAMPLES / "cifar_xnor.yaml"), "cortex-m4")
    assert "_batch" not in files["cifar_xnor.c"] + files["cifar_xnor.h"]
    assert "ARENA_STRIDE" not in files["cifar_xnor.h"]
