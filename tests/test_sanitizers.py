"""Random networks on every x86 target, library and harness built with ASan + UBSan, run on
finite inputs (checked against the reference; through the batch and parallel entry points too)
and on NaN/Inf inputs (which must stay memory-safe).

The harness (templates/harness.c.j2, mode io) gives the library an arena of exactly <NAME>_ARENA_SIZE bytes
and input/output buffers of exactly their sizes, all on the heap, so any access past them, and
any undefined behaviour UBSan sees, aborts the run; the outputs must match the reference
(contract section 2: 1e-4 of the output's scale).
"""
import shutil
import subprocess

import numpy as np
import pytest

import xnorgen
import xnorgen.target as tg
from netgen import random_dag_layers, random_network, write_net
from xnorgen.toolchain import cross as crossbuild
from xnorgen.api import compile_network
from xnorgen.errors import XnorgenError

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                 reason="needs gcc and make")]

SANITIZE = ("-fsanitize=address,undefined,float-cast-overflow", "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer", "-g", "-O1")
X86 = [name for name, t in tg.all_targets().items() if "x86_64" in t.arch]


def _networks(directory, rng):
    """Two whole networks (float stem, xnor/bwn blocks, add, pools, dense head) from netgen and two
    random DAGs (netgen.random_dag_layers): odd channels, strides, borders, asymmetric kernels."""
    yield xnorgen.load(random_network(directory, "whole0", rng))
    yield xnorgen.load(random_network(directory, "whole1", rng, output="fc"))
    for i in range(2):
        shape = (int(rng.choice([1, 3, 64, 65])), int(rng.integers(2, 9)), int(rng.integers(2, 9)))
        yield xnorgen.load(write_net(directory, f"dag{i}", shape, random_dag_layers(rng, shape), rng))


def _sanitized_harness(net, target, directory):
    _, files = compile_network(net, target)
    crossbuild.make_library(files, directory, target, " ".join(SANITIZE))
    return crossbuild.build_harness(directory, net.name, target, SANITIZE, pool=True)


def _run(exe, net, target, x, parts=None):
    try:
        return crossbuild.run_harness(exe, target, x, parts)
    except XnorgenError as e:           # the error keeps one line: run again for the sanitizer's report
        d = exe.parent
        r = subprocess.run([str(exe), str(d / "x.bin"), str(d / "y.bin"), str(len(x))], capture_output=True, text=True)
        pytest.fail(f"{net.name} on {target.name}: {e}\n{r.stderr[-5000:]}")


def _non_finite(rng, shape):
    """All-NaN, all-+Inf, all--Inf, and three samples with 10 % of each among normal values."""
    xs = [np.full(shape, v, np.float32) for v in (np.nan, np.inf, -np.inf)]
    for v in (np.nan, np.inf, -np.inf):
        x = rng.standard_normal(shape).astype(np.float32)
        x[rng.random(shape) < 0.1] = v
        xs.append(x)
    return np.stack(xs)


@pytest.mark.parametrize("name", X86)
def test_random_networks_clean_under_asan_ubsan(tmp_path, name):
    target = tg.resolve(name)
    if not tg.runs_here(target):
        pytest.skip(f"{name} does not run on this machine (needs x86_64 with {', '.join(target.requires_cpu)})")
    rng = np.random.default_rng(sum(map(ord, name)))
    for net in _networks(tmp_path, rng):
        d = tmp_path / net.name
        x = rng.standard_normal((3, *net.input_shape)).astype(np.float32)
        exe = _sanitized_harness(net, target, d)
        got, want = _run(exe, net, target, x), xnorgen.reference(net, x).reshape(3, -1)
        assert np.abs(got - want).max() <= 1e-4 * max(1.0, float(np.abs(want).max())), (net.name, name)
        # the batch entry point in an arena of exactly 3 * ARENA_STRIDE bytes, and the parallel
        # one on 2 threads: the same bits, nothing touched outside their buffers
        for parts in (-1, 2):
            assert np.array_equal(_run(exe, net, target, x, parts), got), (net.name, name, parts)
        # docs/trust.md: NaN or Inf inputs give unspecified values, but the call returns 0 and
        # stays inside its buffers (run_harness fails on any other exit status)
        assert _run(exe, net, target, _non_finite(rng, net.input_shape)).shape == (6, int(np.prod(net.output_shape)))
