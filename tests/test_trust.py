"""Contract section 7, one test per finding of issue 15: a net.yaml or .npz from a stranger cannot
run code, cannot make xnorgen write or delete outside -o, cannot exhaust time or memory, and
every failure is one `error:` line with exit status 2."""
import io
import os
import subprocess
import time
import zipfile

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from netgen import write_net
from xnorgen.cli import main
from xnorgen.codegen.render import POOL_FILES, checked_context, isa_headers
from xnorgen.target import resolve

LAYERS = [{"name": "conv", "type": "conv2d", "mode": "xnor", "filters": 4, "kernel": 3, "padding": 1},
          {"name": "flat", "type": "flatten"}, {"name": "fc", "type": "dense", "units": 3, "bias": True}]
EVIL = "a*/\n__attribute__((constructor)) static void pwn(void) { system(\"touch PWNED\"); }\n/*"


def cli(*args, env=None):
    """Run the CLI in this process: (exit status, stdout, stderr)."""
    r = CliRunner().invoke(main, [str(a) for a in args], env=env)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


def one_error(code, stderr, *fragments):
    assert code == 2, (code, stderr)
    lines = [ln for ln in stderr.splitlines() if not ln.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "internal error" not in lines[0] and "Traceback" not in stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def net(tmp_path):
    return write_net(tmp_path, "good", (5, 6, 6), LAYERS)


def edit(path, fn):
    doc = yaml.safe_load(path.read_text())
    fn(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return path


def compile_fails(net, tmp_path, *fragments, extra=()):
    code, _, err = cli("compile", net, "-t", "x86-64", "-o", tmp_path / "out", *extra)
    line = one_error(code, err, *fragments)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))
    return line


# ---- 1. nothing in a net.yaml can run --------------------------------------------------------

@pytest.mark.parametrize("name", [EVIL, "x*??/\n/", "rtl\u202eevil", "a b", "a/b", "é", "1a", "a" * 129])
def test_layer_names_outside_the_contract_pattern_are_refused(net, tmp_path, name):
    edit(net, lambda d: d["layers"][1].update(name=name))
    line = compile_fails(net, tmp_path, "layer name must match")
    assert "\n" not in line and "\u202e" not in line


def test_generated_c_holds_identifiers_not_raw_names(tmp_path):
    layers = [dict(LAYERS[0], name="a.b-c"), dict(LAYERS[1], name="x-y"), dict(LAYERS[2], name="fc.1")]
    net = write_net(tmp_path, "named", (5, 6, 6), layers)
    code, _, err = cli("compile", net, "-t", "x86-64", "-o", tmp_path / "out")
    assert code == 0, err
    text = "".join(p.read_text() for p in (tmp_path / "out").iterdir() if p.suffix in (".c", ".h", "") and p.is_file())
    assert "a_b_c" in text and "a.b-c" not in text and "fc.1" not in text


@pytest.mark.parametrize("bad", ["*/", "/*", "//", "??/", "\"", "\\", "#include", "$(shell x)", "\u202e", "é"])
def test_templates_refuse_any_text_that_is_not_identifiers_and_numbers(bad):
    with pytest.raises(AssertionError, match="unsafe text"):
        checked_context({"kernels": [{"name": f"layer{bad}x"}]})
    assert checked_context({"kernels": [{"call": "f((const float *)(a + 64), out)", "n": 3, "x": 1.5}]})


# ---- 2. and 3. writes only where -o says, deletes only its own files ----------------------------

def test_compile_into_a_users_directory_deletes_nothing(net, tmp_path):
    (tmp_path / "manifest.json").write_text("{}")        # someone else's manifest.json
    (tmp_path / "mine.txt").write_text("precious")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    code, _, err = cli("compile", net, "-t", "x86-64", "-o", tmp_path)
    one_error(code, err, "not an xnorgen output")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_compile_replaces_its_own_output_built_or_not_but_not_one_a_user_added_to(net, tmp_path):
    out = tmp_path / "out"
    assert cli("compile", net, "-t", "x86-64", "-o", out)[0] == 0
    subprocess.run(["make", "-s", "-C", str(out)], check=True, capture_output=True)
    assert cli("compile", net, "-t", "x86-64", "-o", out)[0] == 0        # sources + make's products
    assert not (out / "libgood.a").exists() and (out / "good.c").exists()
    (out / "notes.txt").write_text("mine")
    one_error(*cli("compile", net, "-t", "x86-64", "-o", out)[::2], "did not write there (notes.txt")
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("where", ["file/sub", "/proc/xnorgen-out", "x" * 300])
def test_unwritable_output_directories_are_one_line(net, tmp_path, where):
    (tmp_path / "file").write_text("")
    code, _, err = cli("compile", net, "-t", "x86-64", "-o", tmp_path / where if not where.startswith("/") else where)
    one_error(code, err)


def test_weights_option_overrides_the_description(net, tmp_path):
    other = tmp_path / "sub"
    other.mkdir()
    with np.load(net.with_suffix(".npz")) as z:
        np.savez(other / "w.npz", **{k: z[k] for k in z.files})
    net.with_suffix(".npz").unlink()
    one_error(*cli("compile", net, "-t", "x86-64", "-o", tmp_path / "a")[::2], str(net), "good.npz")
    assert cli("compile", net, "-t", "x86-64", "-o", tmp_path / "b", "--weights", other / "w.npz")[0] == 0


# ---- 4. every malformed input is one line ---------------------------------------------------

YAML_CASES = {
    "non-UTF-8": (b"name: n\xff\xfe\n", "not UTF-8"),
    "non-string key": (b"1: 2\n", "mapping keys must be plain names"),
    "deep nesting": (b"name: " + b"[" * 200 + b"]" * 200 + b"\n", "nesting deeper"),
    "4300-digit integer": (b"name: n\nx: " + b"9" * 4400 + b"\n", "too long"),
    "duplicate key": (b"name: a\nname: b\n", "duplicate key 'name'"),
    "python tag": (b"name: !!python/object/apply:os.system [ls]\n", "invalid YAML"),
    "empty file": (b"", "expected a mapping"),
}


@pytest.mark.parametrize("case", sorted(YAML_CASES))
def test_malformed_yaml_is_one_line(tmp_path, case):
    data, fragment = YAML_CASES[case]
    (tmp_path / "n.yaml").write_bytes(data)
    compile_fails(tmp_path / "n.yaml", tmp_path, "n.yaml", fragment)


@pytest.mark.parametrize("field,value,fragment", [
    ("stride", 2**64, "larger than xnorgen's limit"),
    ("stride", "1:20", "expected an integer"),             # YAML 1.1 would read 80
    ("filters", "0x10", "expected an integer"),
    ("kernel", [3, 3, 3], "expected an int or a pair"),
    ("filters", 1.0, "expected an integer"),
])
def test_bad_numbers_are_refused(net, tmp_path, field, value, fragment):
    edit(net, lambda d: d["layers"][0].update({field: value}))
    compile_fails(net, tmp_path, "layer conv", fragment)


def test_sexagesimal_and_yaml11_booleans_are_strings(net, tmp_path):
    net.write_text(net.read_text().replace("padding: 1", "padding: 0:1"))
    compile_fails(net, tmp_path, "layer conv: padding")
    edit(net, lambda d: d["layers"][0].update(padding=1, bias=True))
    net.write_text(net.read_text().replace("bias: true", "bias: yes"))
    compile_fails(net, tmp_path, "expected true or false, got 'yes'")


def test_unknown_keys_in_input_are_refused(net, tmp_path):
    edit(net, lambda d: d["input"].update(dtype="float16"))
    compile_fails(net, tmp_path, "input", "dtype")


def _npz_with(net, key, array):
    with np.load(net.with_suffix(".npz")) as z:
        arrays = {k: z[k] for k in z.files}
    arrays[key] = array
    np.savez(net.with_suffix(".npz"), **arrays)


@pytest.mark.parametrize("how,fragment", [
    ("npy", "not an .npz archive"),
    ("empty", "not an .npz archive"),
    ("damaged", "good.npz"),
    ("timedelta", "must hold real numbers, got dtype timedelta64"),
    ("complex", "must hold real numbers"),
    ("huge float64", "beyond float32's range"),
    ("claims 10^12 elements", "has shape [1000000, 1000000]"),
])
def test_malformed_weights_are_one_line(net, tmp_path, how, fragment):
    w = net.with_suffix(".npz")
    shape = (4, 5, 3, 3)
    if how == "npy":
        np.save(w.with_suffix(".npy"), np.zeros(shape))
        w.unlink()
        w.with_suffix(".npy").rename(w)
    elif how == "empty":
        w.write_bytes(b"")
    elif how == "damaged":
        data = bytearray(w.read_bytes())
        data[len(data) // 3: len(data) // 3 + 64] = b"\xff" * 64
        w.write_bytes(bytes(data))
    elif how == "timedelta":
        _npz_with(net, "conv.weight", np.zeros(shape, "m8[s]"))
    elif how == "complex":
        _npz_with(net, "conv.weight", np.zeros(shape, np.complex64))
    elif how == "huge float64":
        _npz_with(net, "conv.weight", np.full(shape, 1e39))
    else:
        with zipfile.ZipFile(w, "w") as z:         # a header claiming 10^12 floats, 16 bytes of data
            b = io.BytesIO()
            np.lib.format.write_array_header_1_0(b, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)})
            z.writestr("conv.weight.npy", b.getvalue() + b"\0" * 16)
    t0 = time.perf_counter()
    compile_fails(net, tmp_path, fragment)
    assert time.perf_counter() - t0 < 10


# ---- 5. resources are bounded before anything is allocated -------------------------------------

def test_alias_bomb_is_refused_fast(tmp_path):
    lines = ["name: bomb", "input: {shape: [1, 8, 8]}", "a0: &a0 [x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 40)]
    lines += ["layers: [{name: r, type: relu, inputs: *a39}]"]
    (tmp_path / "b.yaml").write_text("\n".join(lines) + "\n")
    t0 = time.perf_counter()
    compile_fails(tmp_path / "b.yaml", tmp_path, "alias bomb")
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize("what", ["net", "weights"])
def test_a_fifo_is_refused_not_waited_on(net, tmp_path, what):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    if what == "weights":
        edit(net, lambda d: d.update(weights="fifo"))
    compile_fails(fifo if what == "net" else net, tmp_path, "not a regular file")


def test_tensors_past_the_c_int_range_are_refused(tmp_path):
    net = write_net(tmp_path, "big", (1, 8, 8), [{"name": "r", "type": "relu"}])
    edit(net, lambda d: d["input"].update(shape=[64, 65536, 65536]))
    compile_fails(net, tmp_path, "more than 268435456 elements")


def test_ten_thousand_layers_are_refused_fast(tmp_path):
    net = write_net(tmp_path, "deep", (1, 8, 8), [{"name": "r", "type": "relu"}])
    edit(net, lambda d: d.update(layers=[{"name": f"r{i}", "type": "relu"} for i in range(10_000)]))
    t0 = time.perf_counter()
    compile_fails(net, tmp_path, "10000 layers, more than the limit")
    assert time.perf_counter() - t0 < 10


# ---- 6. names cannot clash with C or each other --------------------------------------------------

@pytest.mark.parametrize("name", ["stdint", "stddef", "Python", "_STDINT", "_MATH", "int", "xg_pack", "Math"])
def test_network_names_that_shadow_headers_or_keywords_are_refused(net, tmp_path, name):
    edit(net, lambda d: d.update(name=name))
    compile_fails(net, tmp_path, "name")


def test_layers_whose_identifiers_would_collide_still_build(tmp_path):
    layers = [dict(LAYERS[0], name="layer_c"), {"name": "c_w", "type": "conv2d", "mode": "bwn", "filters": 3,
                                                  "kernel": 1, "bias": True, "alpha": None}]
    layers[1].pop("alpha")
    layers += [{"name": "c-w", "type": "relu"}, {"name": "c.w", "type": "flatten"}, dict(LAYERS[2], name="w_c")]
    net = write_net(tmp_path, "coll", (5, 6, 6), layers)
    code, _, err = cli("compile", net, "-t", "x86-64", "-o", tmp_path / "out")
    assert code == 0, err
    r = subprocess.run(["make", "-s", "-C", str(tmp_path / "out")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


# ---- the error boundary itself -----------------------------------------------------------------

def test_a_bug_is_one_internal_error_line_and_xnorgen_debug_shows_the_traceback(net, tmp_path, monkeypatch):
    import xnorgen.api

    def broken(*a, **k):
        raise KeyError("mask")
    monkeypatch.setattr(xnorgen.api, "load", broken)
    code, _, err = cli("compile", net, "-t", "x86-64", "-o", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: internal error: KeyError: 'mask'")
    assert "please report" in err and "Traceback" not in err
    r = CliRunner().invoke(main, ["compile", str(net), "-t", "x86-64", "-o", str(tmp_path / "out")],
                           env={"XNORGEN_DEBUG": "1"})
    assert isinstance(r.exception, KeyError)


def test_usage_mistakes_are_one_line_too():
    code, _, err = cli("compile", "--no-such-option")
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ")


def test_docs_state_the_limits_the_code_enforces():
    from pathlib import Path

    from xnorgen import limits
    text = (Path(__file__).parents[1] / "docs" / "trust.md").read_text()
    rows = [f"| net.yaml | {limits.MAX_DESCRIPTION_BYTES >> 20} MiB |",
            f"| {limits.MAX_YAML_NODES:,} |", f"| {limits.MAX_YAML_DEPTH} levels |",
            f"| characters in a number | {limits.MAX_NUMBER_CHARS} |", f"| layers | {limits.MAX_LAYERS:,} |",
            f"| one size field | {limits.MAX_DIM:,} |",
            f"| elements of one tensor or weight array | 2^{limits.MAX_TENSOR_ELEMENTS.bit_length() - 1} |",
            f"| parameters in a network | 2^{limits.MAX_PARAMETERS.bit_length() - 1} |",
            f"| arena | 2^{limits.MAX_ARENA_BYTES.bit_length()} - 1 bytes |",
            f"| {limits.MAX_ARRAY_FILE_BYTES >> 30} GiB, {limits.MAX_INPUT_BYTES >> 30} GiB on disk |"]
    for row in rows:
        assert row in text, row


def test_a_batchnorm_whose_folded_scale_overflows_float32_is_refused(tmp_path):
    net = write_net(tmp_path, "bn", (2, 4, 4), [{"name": "bn", "type": "batchnorm"}, {"name": "r", "type": "relu"}],
                    params={"bn.gamma": np.full(2, 1e38, np.float32), "bn.var": np.zeros(2, np.float32)})
    compile_fails(net, tmp_path, "layer bn", "gamma / sqrt(var + eps) is beyond float32's range")


# ---- 8. cortex-m4 (one table of constant kinds): tests/test_lowering.py


@pytest.mark.parametrize("report", ["memory", "cycles", "speedup"])
def test_simulate_needs_no_weights_file(net, report):
    """Issue 15 item 4: `simulate --report memory` on a network without its weights was a traceback."""
    net.with_suffix(".npz").unlink()
    code, out, err = cli("simulate", net, "-t", "x86-64", "--report", report)
    assert code == 0 and out.strip() and not err.strip(), err


def test_an_output_of_another_network_is_replaced_with_its_build_products(net, tmp_path):
    out = tmp_path / "out"
    assert cli("compile", net, "-t", "x86-64", "-o", out)[0] == 0
    subprocess.run(["make", "-s", "-C", str(out)], check=True, capture_output=True)
    other = write_net(tmp_path, "other", (5, 6, 6), LAYERS)
    code, _, err = cli("compile", other, "-t", "x86-64", "-o", out)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".xnorgen-output.json", "Makefile", "manifest.json", "other.c", "other.h", "other_weights.c",
         "other_weights.h", *isa_headers(resolve("x86-64")), *POOL_FILES])
    assert not list(tmp_path.glob(".out.*"))
