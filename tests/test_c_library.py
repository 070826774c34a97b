"""The generated library as firmware uses it: `compile` + `make`, a C main linked against
only the header and lib<name>.a (templates/harness.c.j2, the one C main of every cross build),
and proof that AddressSanitizer catches an arena one byte short. The sanitizer sweep over
random networks and targets is tests/test_sanitizers.py."""
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

import xnorgen
from netgen import random_input, random_network
from xnorgen.cli import main
from xnorgen.toolchain.cross import build_harness, run_harness
from xnorgen.toolchain.harness import render_io
from xnorgen.target import resolve

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                reason="needs gcc and make")


def _compile_and_make(net_path, out_dir, extra_cflags=""):
    r = CliRunner().invoke(main, ["compile", str(net_path), "--target", "x86-64", "-o", str(out_dir)])
    assert r.exit_code == 0, r.output
    subprocess.run(["make", "-s", "-C", str(out_dir), f"EXTRA_CFLAGS={extra_cflags}"], check=True)


def _run_harness(out_dir, name, x, cflags):
    """The C main every cross build uses (toolchain.harness.render_io: exact-size heap arena and buffers),
    linked against out_dir's header and lib<name>.a; the outputs of batch x."""
    t = resolve("x86-64")
    return run_harness(build_harness(out_dir, name, t, tuple(cflags)), t, x)


def test_c_main_against_header_and_library_matches_python(tmp_path):
    rng = np.random.default_rng(21)
    net_path = random_network(tmp_path, "fw", rng, output="fc")
    out = tmp_path / "out"
    _compile_and_make(net_path, out)
    assert (out / "libfw.a").exists()
    net = xnorgen.load(net_path)
    x = random_input(net, rng, batch=3)
    from_c = _run_harness(out, "fw", x, [])
    from_python = xnorgen.build(net, target="x86-64")(x).reshape(3, -1)   # the same target as the make build
    assert np.array_equal(from_c, from_python)


@pytest.mark.slow
def test_address_sanitizer_catches_a_short_arena(tmp_path):
    """The check above can fail: one byte less than ARENA_SIZE is reported as an overflow."""
    rng = np.random.default_rng(7)
    net_path = random_network(tmp_path, "tiny", rng, output="fc")
    out = tmp_path / "out"
    _compile_and_make(net_path, out, "-fsanitize=address -O1")
    harness = render_io("tiny")
    short = harness.replace("xg_alloc(TINY_ARENA_SIZE)", "xg_alloc(TINY_ARENA_SIZE - 1)")
    assert short != harness
    (out / "main.c").write_text(short)
    exe = out / "harness"
    subprocess.run(["gcc", "-std=c99", "-fsanitize=address", "-I", str(out), str(out / "main.c"), "-L", str(out),
                    "-ltiny", "-lm", "-o", str(exe)], check=True)
    x = random_input(xnorgen.load(net_path), rng, batch=1)
    (out / "x.bin").write_bytes(x.tobytes())
    r = subprocess.run([str(exe), str(out / "x.bin"), str(out / "y.bin"), "1"], capture_output=True, text=True)
    assert r.returncode != 0 and "AddressSanitizer" in r.stderr
