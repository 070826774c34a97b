"""Threads on the host (contract v2, section 5; issue 19 item 1, batches part): a batch spread
over threads gives the same bits as one thread; arenas are reused per calling thread and the C
needs no zeroed arena (issue 19 item 4)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import xnorgen
from netgen import random_input, random_network
from xnorgen.cli import main
from xnorgen.errors import XnorgenError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_a_batch_over_threads_has_the_bits_of_one_thread(tmp_path):
    for seed in range(3):
        rng = np.random.default_rng(70 + seed)
        net = xnorgen.load(random_network(tmp_path, f"t{seed}", rng))
        x = random_input(net, rng, batch=7)
        one = xnorgen.build(net, threads=1)(x)
        for threads in (2, 3, None):
            assert np.array_equal(xnorgen.build(net, threads=threads)(x), one), (seed, threads)


def test_the_arena_is_reused_and_need_not_be_zero():
    lib = xnorgen.build(EXAMPLES / "cifar_xnor.yaml")
    x = np.random.default_rng(0).uniform(-1, 1, (2, *lib.input_shape)).astype(np.float32)
    first = lib(x)
    arena = lib._arena()
    arena[:] = 0xA5                                   # garbage where the last call's tensors were
    assert lib._arena() is arena
    assert np.array_equal(lib(x), first)


def test_python_threads_may_share_one_library():
    lib = xnorgen.build(EXAMPLES / "digits" / "digits_xnor.yaml")
    xs = np.random.default_rng(1).uniform(-0.5, 0.5, (16, *lib.input_shape)).astype(np.float32)
    want = np.stack([lib(x) for x in xs])
    with ThreadPoolExecutor(4) as pool:
        got = np.stack(list(pool.map(lib, xs)))
    assert np.array_equal(got, want)


def test_bad_thread_counts_are_one_line(tmp_path):
    net = xnorgen.load(EXAMPLES / "digits" / "digits_xnor.yaml")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(XnorgenError):
            xnorgen.build(net, threads=bad)


def test_cli_run_threads(tmp_path):
    ex = str(EXAMPLES / "digits" / "digits_xnor.yaml")
    x = np.random.default_rng(2).uniform(-0.5, 0.5, (5, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    outs = []
    for threads in ("1", "2", "0"):
        r = CliRunner().invoke(main, ["run", ex, "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / f"y{threads}.npy"),
                                      "--threads", threads])
        assert r.exit_code == 0, r.output
        outs.append(np.load(tmp_path / f"y{threads}.npy"))
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])


def test_out_is_written_and_returned():
    lib = xnorgen.build(EXAMPLES / "digits" / "digits_xnor.yaml", threads=2)
    x = np.random.default_rng(3).uniform(-0.5, 0.5, (5, *lib.input_shape)).astype(np.float32)
    want = lib(x)
    out = np.full((5, *lib.output_shape), np.nan, np.float32)
    assert lib(x, out=out) is out and np.array_equal(out, want)
    one = np.empty(lib.output_shape, np.float32)
    assert lib(x[2], out=one) is one and np.array_equal(one, want[2])
    for bad in (np.empty((4, *lib.output_shape), np.float32), np.empty((5, *lib.output_shape)),
                np.empty((5, *lib.output_shape), np.float32)[:, ::-1], [0.0] * 10):
        with pytest.raises(XnorgenError):
            lib(x, out=bad)


def test_a_forked_child_gets_its_own_pools():
    """multiprocessing forks on Linux: the parent's pool threads do not exist in the child, which
    must neither wait for them (a hang) nor join them at exit."""
    import os
    import time
    lib = xnorgen.build(EXAMPLES / "cifar_xnor.yaml", threads=2)
    x = np.random.default_rng(4).uniform(-1, 1, (3, *lib.input_shape)).astype(np.float32)
    want = lib(x)                        # both pools exist now (2 samples over threads, 1 split)
    pid = os.fork()
    if pid == 0:                         # the child: exit status 0 only if both paths still work
        try:
            os._exit(0 if np.array_equal(lib(x), want) and np.array_equal(lib(x[0]), want[0]) else 1)
        except BaseException:
            os._exit(2)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung")


def test_non_finite_inputs_are_named_on_every_path():
    """The call checks float32 samples in C just before the kernels read them (loader's
    xg_first_nonfinite): on the per-thread runs, on the split leftover and for one sample, the
    error names the value and its index in x, as the numpy check does for other dtypes."""
    lib = xnorgen.build(EXAMPLES / "digits" / "digits_xnor.yaml", threads=2)
    for sample, value in ((1, np.nan), (4, np.inf), (0, -np.inf)):     # 1: a thread's run; 4: the leftover
        x = np.zeros((5, *lib.input_shape), np.float32)
        x[sample, 0, 3, 5] = value
        with pytest.raises(XnorgenError, match=rf"value {value} at index \[{sample}, 0, 3, 5\] is not finite"):
            lib(x)
        with pytest.raises(XnorgenError, match=r"at index \[0, 3, 5\] is not finite"):
            lib(x[sample])
    x = np.zeros((2, *lib.input_shape))
    x[1, 0, 0, 0] = 1e39                                   # float64 past float32's range: numpy's check
    with pytest.raises(XnorgenError, match=r"index \[1, 0, 0, 0\] is outside float32's range"):
        lib(x)
