"""The simulator's out-of-order model (sim/ops.port_cycles) and the counts it depends on."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

import xnorgen
from netgen import write_net
from xnorgen.plan.core import plan_network
from xnorgen.sim.machine import run_plan
from xnorgen.sim.ops import instructions, port_cycles, sum_cycles
from xnorgen.target import resolve

def make(directory, input_shape, layers):
    directory.mkdir(parents=True, exist_ok=True)
    return xnorgen.load(write_net(directory, "n", input_shape, layers))


PORTS = {"issue_width": 4, "resources": {
    "vector": {"units": 2, "ops": {"vxor": 1, "vadd": 1, "vpopcount": 1}},
    "port5": {"units": 1, "ops": {"vpopcount": 1}},
    "load": {"units": 2, "ops": {"vload": 1, "load_op": 1}},
    "divider": {"units": 1, "ops": {"fdiv": 3}}}}


def test_port_cycles_is_the_busiest_resource():
    # 3 x 90 vector ops on 2 ports = 135 cycles, more than port 5 (90), loads (60) or issue (67.5)
    c = Counter(vxor=90, vadd=90, vpopcount=90, vload=120)
    assert port_cycles(c, PORTS) == (135.0, "vector")
    # more popcounts than the rest: port 5 alone serves them
    c = Counter(vxor=10, vadd=10, vpopcount=100)
    assert port_cycles(c, PORTS) == (100.0, "port5")
    # an occupancy above 1 (a divide every 3 cycles)
    assert port_cycles(Counter(fdiv=40, vxor=4), PORTS) == (120.0, "divider")
    # a class no resource serves costs issue slots only
    assert port_cycles(Counter(add=400), PORTS) == (100.0, "issue")


def test_issue_fuses_compare_and_branch_and_skips_markers():
    c = Counter(add=10, compare=10, branch=10, load_op=6, chain=7, stream=9)
    assert instructions(c) == 30
    assert port_cycles(c, PORTS) == (20 / 4, "issue")


def test_targets_without_ports_keep_the_sum_model(tmp_path):
    net = make(tmp_path, (16, 8, 8), [{"name": "c", "type": "conv2d", "mode": "xnor", "filters": 8,
                                             "kernel": 3, "padding": 1}])
    for name in ("armv8", "cortex-m4"):
        t = resolve(name)
        assert not t.ports
        run = run_plan(plan_network(net, t))
        assert [r.cycles for r in run.layers] == [sum_cycles(r.counts, t) for r in run.layers]


def test_avx512_cycles_are_the_port_bound(tmp_path):
    t = resolve("x86-64-avx512")
    assert t.ports
    net = make(tmp_path, (256, 14, 14), [{"name": "c", "type": "conv2d", "mode": "xnor", "filters": 64,
                                             "kernel": 3, "padding": 1}])
    rep = xnorgen.simulate(net, target=t, report="cycles")
    conv = rep["layers"][-1]
    assert rep["model"] == "ports" and conv["bound"] in t.ports["resources"]
    ops = Counter(conv["ops"])
    # never faster than one vpopcntq per cycle, nor slower than issuing every op one at a time
    assert ops["vpopcount"] <= conv["cycles"] < conv["instructions"]
    assert conv["cycles"] == round(port_cycles(ops, t.ports)[0])


def test_avx2_binary_conv_is_bound_by_its_three_vector_ports(tmp_path):
    """AVX2's nibble-table popcount is 8 vector operations per 4 words (xor, and, shift, and, two
    pshufb, two byte adds) on three ports: L1's conv comes out vector-bound, at least 8/3 cycles
    per 256 binary MACs of in-bounds taps (measured here: 1.00 of the prediction)."""
    t = resolve("x86-64-avx2")
    net = make(tmp_path, (256, 14, 14), [{"name": "c", "type": "conv2d", "mode": "xnor", "filters": 256,
                                             "kernel": 3, "padding": 1}])
    conv = xnorgen.simulate(net, target=t, report="cycles")["layers"][-1]
    steps = 256 // 4 * 256 // 64 * (14 * 3 - 2) ** 2       # filter groups x words x in-bounds taps
    assert conv["bound"] == "vector" and conv["cycles"] >= steps * 8 / 3


def test_buffers_larger_than_l2_stream(tmp_path):
    t = resolve("x86-64-avx512")
    l2 = t.cache["l2_bytes"]
    big = make(tmp_path / "big", (4096,), [{"name": "fc", "type": "dense", "mode": "xnor",
                                                      "units": 4096}])
    small = make(tmp_path / "small", (4096,), [{"name": "fc", "type": "dense", "mode": "xnor",
                                                          "units": 256}])
    fc = run_plan(plan_network(big, t)).layers[-1]
    packed = 4096 * 4096 // 8
    assert packed > l2
    assert fc.counts["stream"] >= math.ceil(packed / 64)           # the weights, at least
    assert run_plan(plan_network(small, t)).layers[-1].counts["stream"] == 0
    # a larger L2 holds them: nothing streams
    roomy = replace(t, cache={**t.cache, "l2_bytes": 4 * packed})
    assert run_plan(plan_network(big, roomy)).layers[-1].counts["stream"] == 0


def test_fma_targets_count_one_fused_multiply_add_per_tap(tmp_path):
    net = make(tmp_path, (3, 12, 12), [{"name": "c", "type": "conv2d", "mode": "float", "filters": 16,
                                             "kernel": 3, "padding": 1}])
    fused = run_plan(plan_network(net, resolve("armv8"))).layers[-1].counts
    plain = run_plan(plan_network(net, resolve("x86-64"))).layers[-1].counts
    assert fused["vfma"] > 0 and "vfma" not in plain
    assert plain["vfmul"] > 0


def test_binarize_tile_a_is_a_chain(tmp_path):
    net = make(tmp_path, (64, 16, 16), [{"name": "c", "type": "conv2d", "mode": "xnor", "filters": 16,
                                             "kernel": 3, "padding": 1}])
    t = resolve("x86-64-avx512")
    stage = run_plan(plan_network(net, t)).layers[0]
    assert stage.type == "binarize"
    assert stage.counts["chain"] == 64 * (16 * 16 // 16)           # one add per channel and tile
    assert port_cycles(stage.counts, t.ports)[1] == "latency"
