"""The target data's `hooks` list against the ISA headers' preprocessor, for every target and
configuration: the hooks xnorgen.plan.hooks says a header provides are exactly the XG_HAVE_<HOOK>
macros the header defines when a network's .c includes it (compiled with the target's compiler
and flags). So the plan, manifest.json and the simulator know which hook the C calls."""
from __future__ import annotations

import dataclasses
import itertools
import re
import shutil
import subprocess

import numpy as np
import pytest

import xnorgen
from netgen import write_net
from xnorgen.compiler import compile_network
from xnorgen.plan.hooks import hook_source, isa_hooks
from xnorgen.target import all_targets

TARGETS = ["x86-64", "x86-64-avx2", "x86-64-avx512", "armv8", "cortex-m4"]


def _variants(t):
    """The target as shipped, and with its hook-relevant knobs moved (those its plan accepts)."""
    lanes = (0, 16) if t.pixel_lanes or t.popcount == "avx512" else (0,)
    for fb, ffb, st, px in itertools.product((0, 2, 4, 8, 16), (0, 8, 16), (0, 16), lanes):
        if px and (fb or 16) % 4:
            continue
        yield dataclasses.replace(t, filter_block=fb, float_block=ffb, store_tile=st, pixel_lanes=px)


def _defined_hooks(files, name, t, tmp_path) -> set[str]:
    d = tmp_path / t.name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    for fname, text in files.items():
        (d / fname).write_text(text)
    out = subprocess.run([t.cc, *t.cflags, "-E", "-dM", str(d / f"{name}.c")], capture_output=True, text=True,
                         check=True).stdout
    return {m.lower() for m in re.findall(r"#define XG_HAVE_(\w+) ", out)}


@pytest.mark.parametrize("name", TARGETS)
def test_target_hooks_match_the_header_preprocessor(tmp_path, name):
    t = all_targets()[name]
    if shutil.which(t.cc) is None:
        pytest.skip(f"{t.cc} not installed")
    net = xnorgen.load(write_net(tmp_path, "hk", [20, 6, 6], [
        {"name": "c", "type": "conv2d", "mode": "xnor", "filters": 16, "kernel": 3, "padding": 1}],
        np.random.default_rng(0)))
    seen = set()
    for v in _variants(t):
        _, files = compile_network(net, v)
        defined = _defined_hooks(files, net.name, v, tmp_path)
        assert defined == set(isa_hooks(v)), (name, v.filter_block, v.float_block, v.store_tile, v.pixel_lanes)
        seen |= defined
    assert seen == set(t.hooks)          # every listed hook is provided by some configuration


def test_hook_source_names_the_provider():
    t = all_targets()["x86-64-avx512"]
    assert hook_source(t, "tile_store") == "avx512"
    assert hook_source(dataclasses.replace(t, store_tile=0), "tile_store") == "portable"
    assert hook_source(all_targets()["x86-64"], "xor_popcount_block") == "portable"
