"""Lowering's one table of constant kinds (lowering.const_c_type): the bytes it gives
(crossbuild.const_bytes) are the bytes of the arrays the compiler puts in the object file,
and a network with every kind compiles for cortex-m4 through the CLI."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import xnorgen
import xnorgen.target as tg
from xnorgen.api import compile_network
from xnorgen.toolchain.cross import const_bytes
from xnorgen.codegen.lowering import const_c_type

ROOT = Path(__file__).parents[1]
TARGETS = ["x86-64", "x86-64-avx2", "x86-64-avx512", "armv8", "cortex-m4"]
# together they hold every kind: float and mask (bwn), word (xnor), int (cifar's padpop)
NETS = ["examples/digits/digits_bwn.yaml", "examples/digits/digits_xnor.yaml", "examples/cifar_xnor.yaml"]


def test_cli_compiles_digits_bwn_for_cortex_m4(tmp_path):
    """Its sign masks (kind "mask") crashed crossbuild's former copy of the table with KeyError."""
    r = subprocess.run([sys.executable, "-m", "xnorgen.cli", "compile", str(ROOT / NETS[0]),
                        "--target", "cortex-m4", "-o", str(tmp_path / "m4")], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and (tmp_path / "m4" / "digits_bwn_weights.c").is_file()


@pytest.mark.parametrize("target", TARGETS)
def test_dtype_holds_as_many_bytes_as_the_c_type(target):
    t = tg.resolve(target)
    for kind in ("word", "float", "int", "mask"):
        ct = const_c_type(kind, t)
        assert ct.dtype.itemsize == ct.itemsize, (kind, ct)


@pytest.mark.parametrize("net_path", NETS, ids=lambda p: Path(p).stem)
@pytest.mark.parametrize("target", TARGETS)
def test_const_bytes_equals_the_symbol_sizes_of_the_compiled_weights(tmp_path, target, net_path):
    """Measured by the target's own compiler and nm -S: sizeof of every <net>_w_* array."""
    t = tg.resolve(target)
    nm = tg.tool(t, "nm")
    if shutil.which(t.cc) is None or shutil.which(nm) is None:
        pytest.skip(f"needs {t.cc} and {nm}")
    plan, files = compile_network(xnorgen.load(ROOT / net_path), t)
    name = plan.net.name
    for f in (f"{name}_weights.c", f"{name}_weights.h"):
        (tmp_path / f).write_text(files[f])
    obj = tmp_path / "w.o"
    subprocess.run([t.cc, *t.cflags, "-c", str(tmp_path / f"{name}_weights.c"), "-o", str(obj)],
                   check=True, capture_output=True)
    rows = [ln.split() for ln in subprocess.run([nm, "-S", "--defined-only", str(obj)], check=True,
                                                capture_output=True, text=True).stdout.splitlines()]
    sizes = [int(r[1], 16) for r in rows if len(r) == 4 and r[3].startswith(f"{name}_w_")]
    assert sizes and sum(sizes) == const_bytes(plan)


def test_affine_folds_constants_and_keeps_precedence():
    """The templates' `affine` filter writes x * m + a as a person would, and never drops the
    parentheses a product needs (a wrong fold is a wrong index, so the exact tests would fail too)."""
    from xnorgen.codegen.context import affine
    assert [affine("ox", 1, 0), affine("ox", 1, -1), affine("ox", 2, 3), affine("x", 0, 5)] == \
        ["ox", "ox - 1", "ox * 2 + 3", "5"]
    assert affine("ky * 3 + 1", 2) == "(ky * 3 + 1) * 2"
    assert affine("(a + b)", 3) == "(a + b) * 3" and affine("(a) + (b)", 2) == "((a) + (b)) * 2"
    for mul in range(4):
        for add in range(-2, 3):
            for x in range(-3, 4):
                assert eval(affine("(x + 1)", mul, add)) == (x + 1) * mul + add
