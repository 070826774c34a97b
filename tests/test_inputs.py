"""The arrays users hand to a network (docs/trust.md, "Non-finite inputs"): the callable,
reference() and simulate() share one check (reference.split_batch) that refuses dtypes that are
not real numbers and values that are not finite float32 numbers, naming the first bad index; the
CLI says so in one line; the C entry point stays memory-safe on what the check refuses."""
import json
from pathlib import Path

import numpy as np
import pytest

import xnorgen
from netgen import write_net
from test_cli import assert_user_error, xnorgen_cli
from xnorgen import XnorgenError

SHAPE = (5, 6, 6)
LAYERS = [{"name": "conv", "type": "conv2d", "mode": "xnor", "filters": 4, "kernel": 3, "padding": 1},
          {"name": "pool", "type": "maxpool", "kernel": 2},
          {"name": "flat", "type": "flatten"}, {"name": "fc", "type": "dense", "units": 3, "bias": True},
          {"name": "prob", "type": "softmax"}]


@pytest.fixture(scope="module")
def net_path(tmp_path_factory):
    return write_net(tmp_path_factory.mktemp("inputs"), "inp", SHAPE, LAYERS)


@pytest.fixture(scope="module")
def net(net_path):
    return xnorgen.load(net_path)


@pytest.fixture(scope="module")
def lib(net):
    return xnorgen.build(net)


def _entry_points(net, lib):
    """The three Python entry points that take an input array."""
    return {"callable": lib, "reference": lambda x: xnorgen.reference(net, x),
            "simulate": lambda x: xnorgen.simulate(net, target="x86-64", x=x)["output"]}


def _refused(fn, x, *fragments):
    with pytest.raises(XnorgenError) as e:
        fn(x)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("inp: input: "), msg
    for f in fragments:
        assert f in msg, msg


def _sample(rng=None):
    return (rng or np.random.default_rng(0)).standard_normal(SHAPE)


BAD_DTYPES = {
    "complex": lambda x: x + 1j,
    "string": lambda x: x.astype(str),
    "bytes": lambda x: x.astype("S12"),
    "datetime64": lambda x: np.zeros(SHAPE, "datetime64[s]"),
    "timedelta64": lambda x: np.zeros(SHAPE, "timedelta64[ms]"),
    "object": lambda x: x.astype(object),
    "bool": lambda x: x > 0,
    "structured": lambda x: np.zeros(SHAPE, [("a", "f4")]),
}


@pytest.mark.parametrize("kind", BAD_DTYPES)
def test_dtypes_that_are_not_real_numbers_are_refused_by_every_entry_point(net, lib, kind):
    x = BAD_DTYPES[kind](_sample())
    for fn in _entry_points(net, lib).values():
        _refused(fn, x, f"{kind} values", "not accepted")
        _refused(fn, x[None], f"{kind} values")                # in a batch too


def test_ragged_nested_list_is_refused(net, lib):
    for fn in _entry_points(net, lib).values():
        _refused(fn, [[1.0, 2.0], [3.0]], "not an array of numbers")


@pytest.mark.parametrize("value, what", [(np.nan, "is not finite"), (np.inf, "is not finite"),
                                         (-np.inf, "is not finite"), (1e39, "outside float32's range")])
def test_non_finite_values_are_refused_at_their_first_index(net, lib, value, what):
    x = _sample()
    x[2, 3, 1] = x[4, 0, 0] = value
    points = _entry_points(net, lib)
    for fn in points.values():
        _refused(fn, x, what, "index [2, 3, 1]")
    batch = np.stack([_sample(), x.astype(np.float64)])
    for name in ("callable", "reference"):
        _refused(points[name], batch, what, "index [1, 2, 3, 1]")


def test_non_finite_in_every_float_width(net, lib):
    for dtype in ("float16", "float32", "float64", "longdouble"):
        x = _sample().astype(dtype)
        x[0, 1, 2] = np.inf
        _refused(lib, x, "value inf at index [0, 1, 2] is not finite")


def test_all_nan_input_is_refused_not_answered(net, lib):
    """Before the rule, the library's maxpool and sign dropped NaN where the reference kept it."""
    x = np.full(SHAPE, np.nan, np.float32)
    for fn in _entry_points(net, lib).values():
        _refused(fn, x, "value nan at index [0, 0, 0] is not finite")


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "int64", "int8", "uint8"])
def test_real_dtypes_are_accepted_and_match_the_reference(net, lib, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, *SHAPE)) if dtype.startswith("float") else rng.integers(0, 4, (2, *SHAPE))
    x = x.astype(dtype)
    want = xnorgen.reference(net, x)
    assert want.shape == (2, 3) and np.isfinite(want).all()
    assert np.abs(lib(x) - want).max() <= 1e-4
    assert np.abs(lib(x[1]) - want[1]).max() <= 1e-4
    assert np.abs(np.array(xnorgen.simulate(net, target="x86-64", x=x[1])["output"]) - want[1]).max() <= 1e-4


def test_nested_list_and_empty_batch(net, lib):
    x = _sample()
    assert np.abs(lib(x.tolist()) - xnorgen.reference(net, x)).max() <= 1e-4
    empty = np.zeros((0, *SHAPE))
    assert lib(empty).shape == (0, 3) and xnorgen.reference(net, empty).shape == (0, 3)


def test_simulate_takes_one_sample(net):
    for x, got in [(np.zeros((2, *SHAPE)), "[2, 5, 6, 6]"), (np.zeros((1, *SHAPE)), "[1, 5, 6, 6]"),
                   (np.zeros((5, 6, 7)), "[5, 6, 7]")]:
        with pytest.raises(XnorgenError) as e:
            xnorgen.simulate(net, target="x86-64", report="speedup", x=x)
        assert f"expected shape [5, 6, 6] (one sample), got {got}" in str(e.value)


def test_c_entry_point_is_safe_on_what_the_check_refuses(lib):
    """The library does not look at values: through bind() (no check) it returns 0 on non-finite input."""
    out = np.empty(3, np.float32)
    for value in (np.nan, np.inf, -np.inf):
        for x in (np.full(SHAPE, value, np.float32), np.where(_sample() > 1, value, _sample()).astype(np.float32)):
            assert lib.bind(np.ascontiguousarray(x), out)() == 0


def test_docs_quote_the_messages_as_they_are():
    digits = xnorgen.load(Path(__file__).parent.parent / "examples" / "digits" / "digits_xnor.yaml", weights=False)
    page = (Path(__file__).parent.parent / "docs" / "trust.md").read_text()
    x = np.zeros((4, 1, 8, 8))
    x[3, 0, 2, 5] = np.nan
    for bad in (x, np.zeros((1, 8, 8), complex)):
        with pytest.raises(XnorgenError) as e:
            xnorgen.reference(digits, bad)
        assert f"\n  {e.value}\n" in page


# ---- the command line: one `error:` line, exit 2, before anything is built or written ----

def _npy(tmp_path, name, x):
    np.save(tmp_path / name, x)
    return tmp_path / name


@pytest.mark.parametrize("kind", ["complex", "string", "datetime64", "bool"])
def test_cli_run_refuses_dtypes(net_path, tmp_path, kind):
    x = _npy(tmp_path, "x.npy", BAD_DTYPES[kind](_sample()))
    assert_user_error(xnorgen_cli("run", net_path, "--input", x, "-o", tmp_path / "y.npy"),
                      "x.npy: ", f"{kind} values")
    assert not (tmp_path / "y.npy").exists()


def test_cli_run_and_simulate_refuse_nan_naming_file_and_index(net_path, tmp_path):
    x = _sample()
    x[1, 2, 3] = np.nan
    one = _npy(tmp_path, "one.npy", x.astype(np.float32))
    batch = _npy(tmp_path, "batch.npy", np.stack([_sample(), x]))
    assert_user_error(xnorgen_cli("run", net_path, "--input", batch), "batch.npy: value nan at index [1, 1, 2, 3]")
    assert_user_error(xnorgen_cli("simulate", net_path, "--report", "cycles", "--input", one),
                      "one.npy: value nan at index [1, 2, 3] is not finite")


def test_cli_simulate_refuses_a_batch_and_a_wrong_shape(net_path, tmp_path):
    for name, x in [("batch.npy", np.zeros((3, *SHAPE), np.float32)), ("wrong.npy", np.zeros((4, 4), np.float32))]:
        r = xnorgen_cli("simulate", net_path, "-t", "x86-64", "--report", "cycles", "--input", _npy(tmp_path, name, x))
        assert_user_error(r, f"{name}: expected shape [5, 6, 6] (one sample)")


def test_cli_input_that_is_an_npz_archive(net_path, tmp_path):
    np.savez(tmp_path / "x.npz", x=_sample())
    for cmd in (["run"], ["simulate", "--report", "cycles"]):
        assert_user_error(xnorgen_cli(*cmd, net_path, "--input", tmp_path / "x.npz"), "x.npz: an .npz archive")


def test_cli_run_output_whose_directory_is_missing_or_a_file(net_path, tmp_path):
    x = _npy(tmp_path, "x.npy", _sample())
    assert_user_error(xnorgen_cli("run", net_path, "--input", x, "-o", tmp_path / "nodir" / "y.npy"),
                      "y.npy: cannot write the outputs:", "is not an existing directory")
    assert_user_error(xnorgen_cli("run", net_path, "--input", x, "-o", x / "y.npy"), "is not an existing directory")
    assert not (tmp_path / "nodir").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_cli_run_and_simulate_accept_float64_and_integers(net, net_path, tmp_path):
    rng = np.random.default_rng(2)
    inputs = {"f64.npy": rng.standard_normal((2, *SHAPE)), "i16.npy": rng.integers(-3, 4, SHAPE).astype(np.int16)}
    for name, x in inputs.items():
        r = xnorgen_cli("run", net_path, "--input", _npy(tmp_path, name, x), "-o", tmp_path / "y.npy")
        assert r.returncode == 0, r.stderr
        assert np.abs(np.load(tmp_path / "y.npy") - xnorgen.reference(net, x)).max() <= 1e-4
    r = xnorgen_cli("simulate", net_path, "-t", "x86-64", "--report", "cycles", "--format", "json",
                    "--input", tmp_path / "i16.npy")
    assert r.returncode == 0, r.stderr
    want = xnorgen.reference(net, inputs["i16.npy"])
    assert np.abs(np.array(json.loads(r.stdout)["output"]) - want).max() <= 1e-4
