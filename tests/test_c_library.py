"""The generated library as firmware uses it: `compile` + `make`, a C main linked against
only the header and lib<name>.a, and the arena checked under AddressSanitizer."""
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

import xnorgen
from netgen import random_input, random_network
from xnorgen.cli import main

HARNESS = r"""
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include "NAME.h"
/* Reads N samples of NAME_INPUT_SIZE floats from argv[1], writes outputs to argv[2].
 * Every buffer is allocated at exactly its documented size, so any overrun is caught. */
int main(int argc, char **argv)
{
    if (argc != 4) return 2;
    int n = atoi(argv[3]);
    FILE *fi = fopen(argv[1], "rb"), *fo = fopen(argv[2], "wb");
    void *arena = NULL;
    if (!fi || !fo || posix_memalign(&arena, NAME_ARENA_ALIGN, NAME_ARENA_SIZE ? NAME_ARENA_SIZE : 1)) return 3;
    for (int s = 0; s < n; ++s) {
        float *in = malloc(sizeof(float) * NAME_INPUT_SIZE), *out = malloc(sizeof(float) * NAME_OUTPUT_SIZE);
        if (fread(in, sizeof(float), NAME_INPUT_SIZE, fi) != NAME_INPUT_SIZE) return 4;
        if (PREFIX_infer(in, out, arena) != 0) return 5;
        fwrite(out, sizeof(float), NAME_OUTPUT_SIZE, fo);
        free(in);
        free(out);
    }
    free(arena);
    fclose(fi);
    fclose(fo);
    return 0;
}
"""

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                reason="needs gcc and make")


def _compile_and_make(net_path, out_dir, extra_cflags=""):
    r = CliRunner().invoke(main, ["compile", str(net_path), "--target", "x86-64", "-o", str(out_dir)])
    assert r.exit_code == 0, r.output
    subprocess.run(["make", "-s", "-C", str(out_dir), f"EXTRA_CFLAGS={extra_cflags}"], check=True)


def _run_harness(out_dir, name, x, cflags):
    src = out_dir / "main.c"
    src.write_text(HARNESS.replace("NAME_", name.upper() + "_").replace("NAME", name).replace("PREFIX", name))
    exe = out_dir / "harness"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", *cflags, "-I", str(out_dir), str(src),
                    "-L", str(out_dir), f"-l{name}", "-lm", "-o", str(exe)], check=True)
    (out_dir / "x.bin").write_bytes(np.ascontiguousarray(x, dtype=np.float32).tobytes())
    r = subprocess.run([str(exe), str(out_dir / "x.bin"), str(out_dir / "y.bin"), str(len(x))],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return np.frombuffer((out_dir / "y.bin").read_bytes(), dtype=np.float32).reshape(len(x), -1)


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
@pytest.mark.parametrize("seed", range(4))
def test_arena_is_exact_under_address_sanitizer(tmp_path, seed):
    rng = np.random.default_rng(seed + 40)
    net_path = random_network(tmp_path, f"asan{seed}", rng, output="fc" if seed % 2 else None)
    out = tmp_path / "out"
    _compile_and_make(net_path, out, "-fsanitize=address -fno-omit-frame-pointer -O1")
    net = xnorgen.load(net_path)
    x = random_input(net, rng, batch=2)
    y = _run_harness(out, f"asan{seed}", x, ["-fsanitize=address"])
    want = xnorgen.reference(net, x).reshape(2, -1)
    assert np.abs(y - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


@pytest.mark.slow
def test_address_sanitizer_catches_a_short_arena(tmp_path):
    """The check above can fail: one byte less than ARENA_SIZE is reported as an overflow."""
    rng = np.random.default_rng(7)
    net_path = random_network(tmp_path, "tiny", rng, output="fc")
    out = tmp_path / "out"
    _compile_and_make(net_path, out, "-fsanitize=address -O1")
    src = out / "main.c"
    src.write_text(HARNESS.replace("NAME_ARENA_SIZE ? NAME_ARENA_SIZE : 1", "NAME_ARENA_SIZE - 1")
                   .replace("NAME_", "TINY_").replace("NAME", "tiny").replace("PREFIX", "tiny"))
    exe = out / "harness"
    subprocess.run(["gcc", "-std=c99", "-fsanitize=address", "-I", str(out), str(src), "-L", str(out),
                    "-ltiny", "-lm", "-o", str(exe)], check=True)
    x = random_input(xnorgen.load(net_path), rng, batch=1)
    (out / "x.bin").write_bytes(x.tobytes())
    r = subprocess.run([str(exe), str(out / "x.bin"), str(out / "y.bin"), "1"], capture_output=True, text=True)
    assert r.returncode != 0 and "AddressSanitizer" in r.stderr
