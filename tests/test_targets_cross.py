"""Cross targets: armv8 run under qemu-aarch64 (exact integer cores, random networks), and
cortex-m4 built freestanding (symbols, size report vs arm-none-eabi-size, fit check).
Every test skips, with the reason, when its toolchain or qemu is missing."""
import dataclasses
import platform
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

import xnorgen
import xnorgen.target as tg
from netgen import TARGET_CONV_CASES, random_input, random_network, with_zeros, write_net, xnor_conv_net
from xnorgen.toolchain import cross as crossbuild
from xnorgen.cli import main
from xnorgen.api import compile_network
from xnorgen.reference import binary_conv_core, sign

pytestmark = pytest.mark.cross


def _need(*programs):
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"cross toolchain missing: {', '.join(missing)} (apt-get install gcc-aarch64-linux-gnu "
                    "libc6-dev-arm64-cross qemu-user gcc-arm-none-eabi libnewlib-arm-none-eabi)")


def _armv8():
    t = tg.resolve("armv8")
    _need(t.cc, t.ar, t.run[0], "make")
    return t


def _run_on(target, net, x, tmp_path, extra_cflags=""):
    """compile -> make -> C harness -> run (under qemu for armv8); outputs as [batch, -1]."""
    _, files = compile_network(net, target)
    d = tmp_path / f"build_{target.name}"
    crossbuild.make_library(files, d, target, extra_cflags)
    exe = crossbuild.build_harness(d, net.name, target)
    return crossbuild.run_harness(exe, target, x), d


@pytest.mark.parametrize("case", TARGET_CONV_CASES, ids=lambda c: "c{}_{}x{}_f{}_k{}_s{}_p{}_pv{}".format(*c))
def test_armv8_xnor_conv_core_exact_under_qemu(tmp_path, case):
    t = _armv8()
    net = xnor_conv_net(tmp_path, *case, seed=case[0] + case[3])
    x = with_zeros((2, *net.input_shape), np.random.default_rng(case[0]))
    got, _ = _run_on(t, net, x, tmp_path)
    want = np.stack([binary_conv_core(net.layer("conv"), s) for s in x]).reshape(2, -1)
    assert np.array_equal(got, want), f"max diff {np.abs(got - want).max()}"


@pytest.mark.parametrize("extra", ["", "-DXG_NO_SIMD"], ids=["neon", "portable"])
def test_armv8_xnor_dense_core_exact_under_qemu(tmp_path, extra):
    t = _armv8()
    n = 333                                               # 6 words: 3 NEON steps; 5 units: a partial block
    layer = {"name": "fc", "type": "dense", "mode": "xnor", "units": 5, "scale_weight": False, "scale_input": False}
    rng = np.random.default_rng(4)
    net = xnorgen.load(write_net(tmp_path, "dn", (n,), [layer], rng, {"fc.weight": with_zeros((5, n), rng)}))
    x = with_zeros((3, n), rng)
    got, _ = _run_on(t, net, x, tmp_path, extra)
    want = np.stack([sign(net.layer("fc").params["weight"]) @ sign(s) for s in x])
    assert np.array_equal(got, want)


@pytest.mark.parametrize("seed", range(3))
def test_armv8_random_networks_match_reference_under_qemu(tmp_path, seed):
    t = _armv8()
    rng = np.random.default_rng(100 + seed)                # the host tests' networks (test_targets.py)
    net = xnorgen.load(random_network(tmp_path, f"r{seed}", rng, output="fc"))
    x = random_input(net, rng, batch=2)
    got, _ = _run_on(t, net, x, tmp_path)
    want = xnorgen.reference(net, x).reshape(2, -1)
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


def test_armv8_library_uses_neon_cnt(tmp_path):
    t = _armv8()
    _need(crossbuild.tool(t, "objdump"))
    net = xnor_conv_net(tmp_path, 256, 6, 6, 8, 3, 1, 1, 0, seed=9)
    _, files = compile_network(net, t)
    lib = crossbuild.make_library(files, tmp_path / "b", t)
    asm = subprocess.run([crossbuild.tool(t, "objdump"), "-d", str(lib)], capture_output=True, text=True).stdout
    ops = [ln.split("\t")[2].split()[0] for ln in asm.splitlines() if ln.count("\t") >= 2]
    assert "cnt" in ops and "uadalp" in ops               # cnt.16b + pairwise add-accumulate


def test_compile_armv8_writes_a_makefile_for_the_cross_compiler(tmp_path):
    rng = np.random.default_rng(1)
    net_path = random_network(tmp_path, "mk", rng)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["compile", str(net_path), "--target", "armv8", "-o", str(out)])
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        assert r.exit_code == 2 and "aarch64-linux-gnu-gcc" in r.output and not out.exists()
        return
    assert r.exit_code == 0, r.output
    assert "CC = aarch64-linux-gnu-gcc" in (out / "Makefile").read_text()


def test_missing_cross_compiler_is_a_clear_error(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    net_path = random_network(tmp_path, "nc", rng)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["compile", str(net_path), "--target", "armv8", "-o", str(out)])
    assert r.exit_code == 2 and r.output.startswith("error: target armv8: compiler 'aarch64-linux-gnu-gcc' not found")
    assert not out.exists()


# --- cortex-m4 ---------------------------------------------------------------------------

ISSUE_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-ffreestanding", "-std=c99"]


def _m4():
    t = tg.resolve("cortex-m4")
    _need(t.cc, t.ar, crossbuild.tool(t, "size"), crossbuild.tool(t, "nm"), "make")
    return t


def _conv_net(tmp_path, name, c, hw, filters, seed=0, pool=2):
    layers = [{"name": "conv1", "type": "conv2d", "filters": c, "kernel": 3, "padding": 1},
              {"name": "bn1", "type": "batchnorm"},
              {"name": "conv2", "type": "conv2d", "mode": "xnor", "filters": filters, "kernel": 3, "padding": 1},
              {"name": "pool", "type": "maxpool", "kernel": pool},
              {"name": "flat", "type": "flatten"},
              {"name": "fc", "type": "dense", "units": 10, "bias": True}]
    return write_net(tmp_path, name, (3, hw, hw), layers, np.random.default_rng(seed))


@pytest.mark.parametrize("seed", range(2))
def test_cortex_m4_builds_freestanding_with_only_libc_block_ops_and_libm(tmp_path, seed):
    t = _m4()
    assert set(ISSUE_FLAGS) <= set(t.cflags)
    net = xnorgen.load(random_network(tmp_path, f"m{seed}", np.random.default_rng(seed)))
    _, files = compile_network(net, t)
    lib = crossbuild.make_library(files, tmp_path / "b", t)     # the Makefile adds -Wall -Wextra -Werror
    assert "-Wall -Wextra -Werror" in files["Makefile"]
    undef = crossbuild.undefined_symbols(lib, t)
    assert undef <= crossbuild.ALLOWED_UNDEFINED | crossbuild.LIBM, undef
    assert "expf" in undef                                     # the check sees real undefined symbols


def test_cortex_m4_folds_the_stem_pool_and_builds(tmp_path):
    """cortex-m4 (fold_pool): conv -> batchnorm -> relu -> maxpool is one kernel whose rows go
    through a ring, so the arena holds no conv output; the library builds with -Werror."""
    t = _m4()
    layers = [{"name": "stem", "type": "conv2d", "filters": 8, "kernel": 5, "stride": 2, "padding": 2},
              {"name": "bn", "type": "batchnorm"}, {"name": "act", "type": "relu"},
              {"name": "pool", "type": "maxpool", "kernel": 3, "stride": 2, "padding": 1},
              {"name": "flat", "type": "flatten"}, {"name": "fc", "type": "dense", "units": 4}]
    net = xnorgen.load(write_net(tmp_path, "stem", (3, 32, 32), layers, np.random.default_rng(1)))
    plan, files = compile_network(net, t)
    assert plan.layers[0].epilogue == ["bn", "act", "pool"] and "stem" not in plan.buffers
    assert plan.arena_size < compile_network(net, t, fuse=False)[0].arena_size
    lib = crossbuild.make_library(files, tmp_path / "b", t)
    assert crossbuild.undefined_symbols(lib, t) <= crossbuild.ALLOWED_UNDEFINED | crossbuild.LIBM


def test_cortex_m4_size_report_equals_arm_none_eabi_size(tmp_path):
    t = _m4()
    net_path = _conv_net(tmp_path, "fits", 32, 16, 64)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["compile", str(net_path), "--target", "cortex-m4", "-o", str(out)])
    assert r.exit_code == 0, r.output
    subprocess.run(["make", "-s", "-C", str(out)], check=True, capture_output=True)
    size = subprocess.run([crossbuild.tool(t, "size"), "-t", str(out / "libfits.a")], capture_output=True,
                          text=True, check=True).stdout.splitlines()[-1].split()
    text, data = int(size[0]), int(size[1])
    assert f"flash {text + data} B" in r.output and "measured with arm-none-eabi-size" in r.output
    plan, files = compile_network(xnorgen.load(net_path), t)
    assert f"arena {plan.arena_size} B" in r.output
    rep = crossbuild.size_report(plan, files)
    assert rep.measured and rep.flash_bytes == text + data
    assert rep.weight_bytes <= rep.flash_bytes
    # The plan-only estimate (no toolchain) is within 25% of the measurement and not below it.
    assert text + data <= rep.estimate_flash_bytes <= 1.25 * (text + data), (rep.estimate_flash_bytes, text + data)


def test_cortex_m4_network_too_big_for_the_part_fails_and_writes_nothing(tmp_path):
    _m4()
    net_path = _conv_net(tmp_path, "big", 16, 48, 32, pool=8)     # arena ~440 KiB > 192 KiB, flash ~60 KiB
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["compile", str(net_path), "--target", "cortex-m4", "-o", str(out)])
    assert r.exit_code == 2
    line = r.output.strip()
    assert line.startswith(f"error: {net_path}: does not fit the cortex-m4 part: RAM") and "> 192 KiB" in line
    assert len(line.splitlines()) == 1 and "Traceback" not in r.output
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    # The same network fits a part with more RAM ...
    r = CliRunner().invoke(main, ["compile", str(net_path), "--target", "cortex-m4", "-o", str(out), "--ram-kib", "4096"])
    assert r.exit_code == 0, r.output
    assert (out / "big.c").exists()
    # ... and a small network does not fit a 16 KiB flash part.
    small = _conv_net(tmp_path, "small", 32, 16, 64)
    r = CliRunner().invoke(main, ["compile", str(small), "--target", "cortex-m4", "-o", str(tmp_path / "o2"),
                                  "--flash-kib", "16"])
    assert r.exit_code == 2 and "flash" in r.output and "> 16 KiB" in r.output and not (tmp_path / "o2").exists()


def test_estimate_is_used_without_a_toolchain(tmp_path, monkeypatch):
    """Without arm-none-eabi-size the report falls back to the plan's estimate."""
    t = tg.resolve("cortex-m4")
    plan, files = compile_network(xnorgen.load(_conv_net(tmp_path, "est", 32, 16, 64)), t)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    rep = crossbuild.size_report(plan, files)
    assert not rep.measured and rep.flash_bytes == crossbuild.estimate_flash(plan) > rep.weight_bytes
    assert rep.ram_bytes == plan.arena_size + 4 * (plan.input_size + plan.output_size)


@pytest.mark.parametrize("case", TARGET_CONV_CASES[:5], ids=lambda c: "c{}_f{}_pv{}".format(c[0], c[3], c[7]))
def test_cortex_m4_code_32bit_swar_path_is_exact_on_the_host(tmp_path, case):
    """The cortex-m4 C (32-bit words, SWAR popcount) compiled for this machine: exact cores.
    (No Cortex-M emulator runs here; this checks the same generated code, word width and packing.)"""
    _need("gcc")
    m4 = tg.resolve("cortex-m4")
    host = dataclasses.replace(m4, cc="gcc", cflags=("-std=c99", "-O2", "-fno-math-errno"),
                               arch=(platform.machine(),), requires_cpu=())
    net = xnor_conv_net(tmp_path, *case, seed=case[0] + 7)
    x = with_zeros((2, *net.input_shape), np.random.default_rng(case[1]))
    lib = xnorgen.build(net, target=host)
    assert "typedef uint32_t xg_word_t;" in lib.files[f"{net.name}.c"] and "xg_popcount(xg_word_t x)" in lib.files["xg_swar.h"]
    want = np.stack([binary_conv_core(net.layer("conv"), s) for s in x])
    assert np.array_equal(lib(x), want)
