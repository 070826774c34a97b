"""The x86 targets (x86-64, x86-64-avx2, x86-64-avx512) against the golden model, the
ISA code actually in the built library, the portable fallback, `host` selection, and the
target descriptions themselves. Variants this CPU lacks are skipped with a reason."""
import dataclasses
import platform
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import yaml

import xnorgen
import xnorgen.target as tg
from netgen import TARGET_CONV_CASES, random_input, random_network, with_zeros, write_net, xnor_conv_net
from xnorgen.reference import binary_conv_core, sign

X86 = ["x86-64", "x86-64-avx2", "x86-64-avx512"]
#: An instruction the target's popcount template must put into the library.
SIGNATURE = {"x86-64": "popcnt", "x86-64-avx2": "vpshufb", "x86-64-avx512": "vpopcntq"}


def _target(name):
    t = tg.resolve(name)
    if not tg.runs_here(t):
        missing = sorted(set(t.requires_cpu) - tg._cpu_flags())
        pytest.skip(f"{name} does not run on this {platform.machine()} CPU (lacks {', '.join(missing) or t.arch})")
    return t


@pytest.mark.parametrize("target", X86)
@pytest.mark.parametrize("case", TARGET_CONV_CASES, ids=lambda c: "c{}_{}x{}_f{}_k{}_s{}_p{}_pv{}".format(*c))
def test_xnor_conv_core_exact(tmp_path, target, case):
    t = _target(target)
    net = xnor_conv_net(tmp_path, *case, seed=case[0] + case[3])
    x = with_zeros((2, *net.input_shape), np.random.default_rng(case[0]))
    got = xnorgen.build(net, target=t)(x)
    want = np.stack([binary_conv_core(net.layer("conv"), s) for s in x])
    assert np.array_equal(got, want), f"max diff {np.abs(got - want).max()}"


@pytest.mark.parametrize("target", X86)
@pytest.mark.parametrize("n", [1, 64, 65, 300, 1000])
def test_xnor_dense_core_exact(tmp_path, target, n):
    t = _target(target)
    layer = {"name": "fc", "type": "dense", "mode": "xnor", "units": 13, "scale_weight": False, "scale_input": False}
    rng = np.random.default_rng(n)
    net = xnorgen.load(write_net(tmp_path, "d", (n,), [layer], rng, {"fc.weight": with_zeros((13, n), rng)}))
    x = with_zeros((3, n), rng)
    want = np.stack([sign(net.layer("fc").params["weight"]) @ sign(s) for s in x])
    assert np.array_equal(xnorgen.build(net, target=t)(x), want)


@pytest.mark.parametrize("target", X86)
@pytest.mark.parametrize("mode", ["float", "bwn"])
@pytest.mark.parametrize("shape", [(5, 13, 30, 9, (3, 3), 1, 1), (3, 20, 45, 16, (3, 5), 2, 2), (7, 9, 40, 5, (1, 3), 1, 0)],
                         ids=lambda s: "c{}_{}x{}_f{}_k{}x{}_s{}_p{}".format(*s[:4], *s[4], *s[5:]))
def test_float_and_bwn_conv_bit_exact_with_simulator(tmp_path, target, mode, shape):
    """Every row and channel of each window (the grouped path's xg_*_window_px, the pixel lanes,
    the border columns) in the simulator's float32 order: C == simulator bit for bit."""
    t = _target(target)
    c, h, w, f, k, stride, pad = shape
    layer = {"name": "conv", "type": "conv2d", "mode": mode, "filters": f, "kernel": list(k), "stride": stride,
             "padding": pad, "bias": True}
    net = xnorgen.load(write_net(tmp_path, "fb", (c, h, w), [layer], np.random.default_rng(c * h)))
    x = np.random.default_rng(w).standard_normal(net.input_shape).astype(np.float32)
    want = np.asarray(xnorgen.simulate(net, target=t, report="cycles", x=x)["output"], dtype=np.float32)
    assert np.array_equal(xnorgen.build(net, target=t)(x), want.reshape(net.output_shape))


@pytest.mark.parametrize("mode", ["float", "bwn"])
def test_avx2_two_vector_blocks_without_fma_bit_exact(tmp_path, mode):
    """popcount_avx2's 16-filter windows on a target without FMA (a multiply, then an add):
    C == simulator bit for bit, as on the shipped target with FMA (the test above)."""
    t = dataclasses.replace(_target("x86-64-avx2"), fma=False)
    layer = {"name": "conv", "type": "conv2d", "mode": mode, "filters": 20, "kernel": [3, 5], "stride": 2,
             "padding": 2, "bias": True}
    net = xnorgen.load(write_net(tmp_path, "nf", (5, 17, 40), [layer], np.random.default_rng(4)))
    x = np.random.default_rng(5).standard_normal(net.input_shape).astype(np.float32)
    want = np.asarray(xnorgen.simulate(net, target=t, report="cycles", x=x)["output"], dtype=np.float32)
    assert np.array_equal(xnorgen.build(net, target=t)(x), want.reshape(net.output_shape))


@pytest.mark.parametrize("target", X86)
def test_bwn_conv_with_expanded_masks_bit_exact(tmp_path, target):
    """target.bwn_expand: each filter block's sign masks expanded into +-1.0 floats in an arena
    buffer, then the float kernels (windows, single columns, pixel lanes where the target has
    them): C == simulator bit for bit, with and without FMA (x86-64 has none)."""
    from xnorgen.plan.core import plan_network
    t = dataclasses.replace(_target(target), bwn_expand=True)
    layer = {"name": "conv", "type": "conv2d", "mode": "bwn", "filters": 21, "kernel": [3, 2], "stride": 1,
             "padding": [1, 0], "bias": True}
    net = xnorgen.load(write_net(tmp_path, "bx", (6, 11, 37), [layer], np.random.default_rng(9)))
    lp = plan_network(net, t).layers[0]
    assert lp.tiling.bwn_expand and "bwn_weights" in lp.scratch
    x = np.random.default_rng(10).standard_normal(net.input_shape).astype(np.float32)
    want = np.asarray(xnorgen.simulate(net, target=t, report="cycles", x=x)["output"], dtype=np.float32)
    assert np.array_equal(xnorgen.build(net, target=t)(x), want.reshape(net.output_shape))


@pytest.mark.parametrize("target", X86)
@pytest.mark.parametrize("op", ["maxpool", "avgpool"])
@pytest.mark.parametrize("geom", [(3, 2, 1), (2, 2, 0), (3, 1, 1), (2, 3, 0)], ids=lambda g: "k{}_s{}_p{}".format(*g))
def test_pool_bit_exact_with_simulator(tmp_path, target, op, geom):
    """Rows of 18-40 interior outputs (whole and masked vectors on avx2 and avx512), strides 1, 2 and 3
    (a gather), with ties, -0.0 and NaN among the inputs: C == simulator bit for bit."""
    t = _target(target)
    k, stride, pad = geom
    net = xnorgen.load(write_net(tmp_path, "pl", (3, 11, 41), [{"name": "p", "type": op, "kernel": k, "stride": stride,
                                                                "padding": pad}]))
    rng = np.random.default_rng(k * 10 + stride)
    x = rng.integers(-4, 5, size=net.input_shape).astype(np.float32) / 2      # many ties
    x[0, 0, :5] = -0.0
    x[1, 2, 7] = np.nan
    # NaN is refused by the checked entry points (docs/trust.md), so both sides run unchecked here:
    # the simulator's machine and the C entry point through bind(), which is what firmware calls.
    from xnorgen.sim.machine import run_plan
    from xnorgen.sim.report import plan_for
    want = np.asarray(run_plan(plan_for(net, t), x).output, dtype=np.float32)
    got = np.empty(net.output_shape, np.float32)
    assert xnorgen.build(net, target=t).bind(x, got)() == 0
    assert np.array_equal(got.view(np.uint32), want.reshape(net.output_shape).view(np.uint32))


@pytest.mark.parametrize("target", X86)
@pytest.mark.parametrize("c", [40, 65, 130])
@pytest.mark.parametrize("bn", [True, False], ids=["batchnorm", "plain"])
def test_binarize_stage_bit_exact_with_simulator(tmp_path, target, c, bn):
    """A standalone binarize stage, with a folded batchnorm or without: two tiles of 16 pixels
    and a tail of 3, words whose channels cross the 32-bit halves of avx2's accumulators (40),
    a last word of 1 or 2 channels (65, 130), zeros and -0.0 (not negative), and A for the
    conv's K: C == simulator bit for bit."""
    t = _target(target)
    layers = [{"name": "bn", "type": "batchnorm"}] if bn else []
    layers.append({"name": "conv", "type": "conv2d", "mode": "xnor", "filters": 5, "kernel": 3, "padding": 1})
    net = xnorgen.load(write_net(tmp_path, "bz", (c, 5, 7), layers, np.random.default_rng(c)))
    x = with_zeros((1, *net.input_shape), np.random.default_rng(c + 1))[0].astype(np.float32)
    x[:3, 1, :4] = -0.0
    want = np.asarray(xnorgen.simulate(net, target=t, report="cycles", x=x)["output"], dtype=np.float32)
    assert np.array_equal(xnorgen.build(net, target=t)(x), want.reshape(net.output_shape))


@pytest.mark.parametrize("target", X86)
@pytest.mark.parametrize("seed", range(3))
def test_random_networks_match_reference(tmp_path, target, seed):
    t = _target(target)
    rng = np.random.default_rng(100 + seed)
    net = xnorgen.load(random_network(tmp_path, f"r{seed}", rng, output="fc"))
    x = random_input(net, rng, batch=2)
    got, want = xnorgen.build(net, target=t)(x), xnorgen.reference(net, x)
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


def _disassembly(lib) -> str:
    if shutil.which("objdump") is None:
        pytest.skip("needs objdump")
    return subprocess.run(["objdump", "-d", "--no-show-raw-insn", lib._mod.__file__],
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("target", X86)
def test_library_contains_the_targets_popcount_instruction(tmp_path, target):
    t = _target(target)
    net = xnor_conv_net(tmp_path, 256, 6, 6, 16, 3, 1, 1, 0, seed=1)
    asm = _disassembly(xnorgen.build(net, target=t))
    assert SIGNATURE[target] in asm
    if target != "x86-64-avx512":
        assert "vpopcntq" not in asm


@pytest.mark.parametrize("how", ["baseline-flags", "XG_NO_SIMD"])
@pytest.mark.parametrize("target", ["x86-64-avx2", "x86-64-avx512"])
def test_portable_fallback_is_exact(tmp_path, target, how):
    """The ISA template keeps a portable C path: taken when the code is built without the ISA
    flags (then no ISA instruction can appear) or with -DXG_NO_SIMD (then gcc may still
    auto-vectorize the portable loops with the ISA flags, which is fine)."""
    t = _target(target)
    base = tg.resolve("x86-64")
    cflags = base.cflags if how == "baseline-flags" else (*t.cflags, "-DXG_NO_SIMD")
    portable = dataclasses.replace(t, cflags=cflags)
    net = xnor_conv_net(tmp_path, 520, 4, 4, 11, 3, 1, 1, -1, seed=2)
    x = with_zeros((2, *net.input_shape), np.random.default_rng(3))
    lib = xnorgen.build(net, target=portable)
    want = np.stack([binary_conv_core(net.layer("conv"), s) for s in x])
    assert np.array_equal(lib(x), want)
    if how == "baseline-flags":
        assert SIGNATURE[target] not in _disassembly(lib)
        intrinsic = {"avx2": "_mm256_shuffle_epi8", "avx512": "_mm512_popcnt_epi64"}[t.popcount]
        assert intrinsic in lib.files[f"xg_{t.popcount}.h"]   # the ISA code is there, the preprocessor skipped it


def test_host_is_the_best_supported_x86_target(monkeypatch):
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("x86 only")
    here = [t for t in tg.all_targets().values() if tg.runs_here(t)]
    assert tg.resolve("host") == max(here, key=lambda t: t.priority)
    flags = {"popcnt", "avx2", "sse4_2"}
    monkeypatch.setattr(tg, "_cpu_flags", lambda: flags)
    assert tg.resolve("host").name == "x86-64-avx2"
    flags.add("avx512f")
    assert tg.resolve("host").name == "x86-64-avx2"          # avx512f without vpopcntdq is not enough
    flags.add("avx512_vpopcntdq")
    assert tg.resolve("host").name == "x86-64-avx512"
    flags.clear()
    flags.add("popcnt")
    assert tg.resolve("host").name == "x86-64"


def test_armv8_and_cortex_m4_never_run_natively_here(tmp_path):
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("x86 only")
    assert not tg.runs_here(tg.resolve("armv8")) and not tg.runs_here(tg.resolve("cortex-m4"))
    with pytest.raises(xnorgen.errors.XnorgenError, match="does not run on this machine"):
        xnorgen.build(xnorgen.load(random_network(tmp_path, "n", np.random.default_rng(0))), target="armv8")


REQUIRED = {"x86-64", "x86-64-avx2", "x86-64-avx512", "armv8", "cortex-m4"}


def test_every_target_is_complete_data():
    targets = tg.all_targets()
    assert REQUIRED <= set(targets)
    templates = Path(str(resources.files("xnorgen.templates")))
    for name in REQUIRED:
        t = targets[name]
        assert t.word_bits in (32, 64) and t.vector_bits % t.word_bits == 0, name
        assert (templates / "isa" / f"xg_{t.popcount}.h").exists(), name
        assert {"load", "xor", "add", "branch", "fmul", "fadd"} <= set(t.costs), name
        assert t.popcount == "swar" or "popcount" in t.costs, name
        assert all(float(v) > 0 for v in t.costs.values()), name
        text = (Path(str(resources.files("xnorgen.targets"))) / f"{name}.yaml").read_text()
        costs_block = text[text.index("costs:"):] if "costs:" in text else ""
        comments = text[:text.index("costs:")]
        assert yaml.safe_load(text)["name"] == name
        assert costs_block and any(s in comments for s in ("Source", "Agner", "Manual", "Guide")), \
            f"{name}: the cost table must name its source"
    assert targets["cortex-m4"].word_bits == 32 and targets["cortex-m4"].memory == {"flash_kib": 1024, "ram_kib": 192}
    assert targets["armv8"].run[0] == "qemu-aarch64"
