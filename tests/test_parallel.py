"""The parallel entry point of hosted targets (plan/parallel.py, <name>_infer_parallel, xg_pool;
issue 19 item 1, one sample on several threads): every part count gives the bits of
<name>_infer, on every kind of split, through Python, through the C API with xg_pool, and on
armv8 under qemu; firmware targets get no parallel code at all."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import xnorgen
import xnorgen.target as tg
from netgen import random_dag_layers, random_input, random_network, write_net
from xnorgen.api import compile_network
from xnorgen.plan import parallel
from xnorgen.toolchain import cross

AXES = {"output rows", "unit blocks", "channels", "pixel tiles"}


@pytest.fixture
def split_everything(monkeypatch):
    """Split every kernel that can be (the work threshold off), so small networks hit every path."""
    monkeypatch.setattr(parallel, "MIN_SPLIT_WORK", 0)


def _networks(directory, rng, count):
    for i in range(count):
        yield xnorgen.load(random_network(directory, f"p{i}", rng))
        shape = (int(rng.choice([1, 3, 64, 65])), int(rng.integers(2, 9)), int(rng.integers(2, 9)))
        yield xnorgen.load(write_net(directory, f"pd{i}", shape, random_dag_layers(rng, shape), rng))


def _splits(manifest) -> list[dict]:
    return [s["split"] for s in manifest["layers"] + manifest["binarize_stages"] if s.get("split")]


def _parallel(lib, x, parts, pool):
    """x through <name>_infer_parallel with `parts` parts on xg_pool `pool` (cffi)."""
    ffi, clib = lib._mod.ffi, lib._mod.lib
    out = np.empty((len(x), *lib.output_shape), np.float32)
    arena = lib.new_arena()
    pa = ffi.cast("void *", arena.ctypes.data) if lib.arena_size else ffi.NULL
    pfor = ffi.addressof(clib, "xg_pool_parallel_for")
    for s, o in zip(x, out):
        assert lib._infer_parallel(ffi.from_buffer("float[]", s), ffi.from_buffer("float[]", o), pa, parts, pfor,
                                   pool) == 0
    return out


def test_every_part_count_gives_the_bits_of_one_thread(tmp_path, split_everything):
    rng = np.random.default_rng(190)
    axes = set()
    for net in _networks(tmp_path, rng, 3):
        lib = xnorgen.build(net)
        splits = _splits(lib.manifest)
        axes |= {s["axis"] for s in splits}
        assert all(s["extent"] >= 2 for s in splits)
        x = random_input(net, rng, batch=2)
        want = lib(x)
        pool = lib._mod.lib.xg_pool_create(3)
        try:
            for parts in (1, 2, 3, 5, 64):          # 64: more parts than most extents (empty ranges)
                assert np.array_equal(_parallel(lib, x, parts, pool), want), (net.name, parts)
        finally:
            lib._mod.lib.xg_pool_destroy(pool)
    assert axes == AXES, f"splits seen: {axes}"


def test_a_bit_pool_splits_by_rows_with_the_bits_of_one_thread(tmp_path, split_everything):
    """conv -> maxpool -> batchnorm -> xnor conv: the pool runs on packed signs, by output rows."""
    layers = [{"name": "bn0", "type": "batchnorm"},
              {"name": "c1", "type": "conv2d", "mode": "xnor", "filters": 65, "kernel": 3, "padding": 1,
               "pad_value": 1, "scale_input": False},
              {"name": "p1", "type": "maxpool", "kernel": 3, "stride": 2, "padding": 1},
              {"name": "bn1", "type": "batchnorm"},
              {"name": "c2", "type": "conv2d", "mode": "xnor", "filters": 8, "kernel": 1, "scale_input": False},
              {"name": "flat", "type": "flatten"}]
    rng = np.random.default_rng(191)
    net = xnorgen.load(write_net(tmp_path, "bp", (16, 11, 9), layers, rng))
    lib = xnorgen.build(net)
    p1 = next(la for la in lib.manifest["layers"] if la["name"] == "p1")
    assert p1["fusion"]["bit_pool"] and p1["split"]["axis"] == "output rows"
    x = random_input(net, rng, batch=2)
    want = lib(x)
    pool = lib._mod.lib.xg_pool_create(3)
    try:
        for parts in (2, 3, 64):
            assert np.array_equal(_parallel(lib, x, parts, pool), want), parts
    finally:
        lib._mod.lib.xg_pool_destroy(pool)


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _one_sample_on_threads(net):
    x = np.random.default_rng(1).uniform(-1, 1, (3, *net.input_shape)).astype(np.float32)
    one = xnorgen.build(net, threads=1)(x)
    for threads in (2, 3):                     # 3: one sample left over after a round of the batch
        lib = xnorgen.build(net, threads=threads)
        assert np.array_equal(lib(x[0]), one[0]) and np.array_equal(lib(x), one), (net.name, threads)
    assert _splits(lib.manifest), f"{net.name}: nothing split"


def test_examples_one_sample_on_threads():
    for path in ("digits/digits_xnor.yaml", "cifar_xnor.yaml"):
        _one_sample_on_threads(xnorgen.load(EXAMPLES / path))


@pytest.mark.slow
def test_resnet18_one_sample_on_threads(tmp_path):
    from xnorgen.frontend.weights import random_weights
    path = EXAMPLES / "resnet18.yaml"
    net = xnorgen.load(path, weights=False)
    np.savez(tmp_path / "w.npz", **random_weights(net, np.random.default_rng(3), weight_scale=0.1))
    _one_sample_on_threads(xnorgen.load(path, weights_file=tmp_path / "w.npz"))


def test_firmware_targets_get_no_parallel_code(split_everything):
    net = xnorgen.load(EXAMPLES / "cifar_xnor.yaml")
    plan, files = compile_network(net, "cortex-m4")
    assert not any(lp.split for lp in plan.layers) and not any(st.split for st in plan.binarize.values())
    assert "xg_pool.c" not in files and "_parallel" not in files["cifar_xnor.c"] + files["cifar_xnor.h"]
    assert "int lo, int hi" not in files["cifar_xnor.c"]


def test_bad_arguments_are_refused(split_everything):
    lib = xnorgen.build(EXAMPLES / "cifar_xnor.yaml")
    ffi, clib = lib._mod.ffi, lib._mod.lib
    x, out = np.zeros(lib.input_shape, np.float32), np.zeros(lib.output_shape, np.float32)
    arena = lib.new_arena()
    args = [ffi.from_buffer("float[]", x), ffi.from_buffer("float[]", out), ffi.cast("void *", arena.ctypes.data)]
    pfor = ffi.addressof(clib, "xg_pool_parallel_for")
    pool = clib.xg_pool_create(2)
    try:
        limit = int(getattr(clib, "CIFAR_XNOR_MAX_PARTS"))
        assert lib._infer_parallel(*args, 0, pfor, pool) == -3
        assert lib._infer_parallel(*args, limit + 1, pfor, pool) == -3
        assert lib._infer_parallel(*args, 2, ffi.NULL, pool) == -1
        misaligned = ffi.cast("void *", arena.ctypes.data + 8)
        assert lib._infer_parallel(args[0], args[1], misaligned, 2, pfor, pool) == -2
        assert lib._infer_parallel(*args, limit, pfor, pool) == 0
    finally:
        clib.xg_pool_destroy(pool)
    assert clib.xg_pool_create(0) == ffi.NULL and clib.xg_pool_create(limit + 1) == ffi.NULL


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_the_pool_runs_every_index_once(threads):
    lib = xnorgen.build(EXAMPLES / "cifar_xnor.yaml")
    ffi, clib = lib._mod.ffi, lib._mod.lib
    seen = []

    @ffi.callback("void(void *, int)")
    def task(ctx, i):
        seen.append(i)                        # list.append is atomic under the GIL
    pool = clib.xg_pool_create(threads)
    try:
        for n in (0, 1, 2, 3, 7, 100):
            seen.clear()
            clib.xg_pool_parallel_for(pool, n, task, ffi.NULL)
            assert sorted(seen) == list(range(n)), (threads, n)
    finally:
        clib.xg_pool_destroy(pool)


def _c_api_runs(net, target, directory, x, extra_cflags=()):
    """The C API outside Python: lib<name>.a, xg_pool.c and the io harness, run at 1-3 parts."""
    _, files = compile_network(net, target)
    cross.make_library(files, directory, target, " ".join(extra_cflags))
    exe = cross.build_harness(directory, net.name, target, tuple(extra_cflags), pool=True)
    return [cross.run_harness(exe, target, x, parts) for parts in (None, 1, 2, 3)]


def test_the_c_api_with_xg_pool(tmp_path, split_everything):
    rng = np.random.default_rng(191)
    for net in _networks(tmp_path, rng, 1):
        x = random_input(net, rng, batch=2)
        runs = _c_api_runs(net, tg.resolve("host"), tmp_path / net.name, x)
        want = xnorgen.build(net)(x).reshape(len(x), -1)
        assert all(np.array_equal(r, want) for r in runs), net.name


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_no_data_race_under_thread_sanitizer(tmp_path, split_everything):
    """ThreadSanitizer sees every access the parts make (the kernels and xg_pool built with it)."""
    rng = np.random.default_rng(192)
    target = tg.resolve("x86-64")
    for net in _networks(tmp_path, rng, 1):
        x = random_input(net, rng, batch=2)
        runs = _c_api_runs(net, target, tmp_path / net.name, x, ("-fsanitize=thread", "-g", "-O1"))
        assert all(np.array_equal(r, runs[0]) for r in runs), net.name


@pytest.mark.cross
@pytest.mark.skipif(not tg.executes_here(tg.resolve("armv8")), reason="needs aarch64-linux-gnu-gcc and qemu-aarch64")
def test_armv8_parallel_under_qemu(tmp_path, split_everything):
    rng = np.random.default_rng(193)
    target = tg.resolve("armv8")
    for net in _networks(tmp_path, rng, 1):
        x = random_input(net, rng, batch=2)
        runs = _c_api_runs(net, target, tmp_path / net.name, x)
        assert all(np.array_equal(r, runs[0]) for r in runs), net.name
