"""Contract section 7 under fuzzing: mutated examples (tests/fuzz_inputs.py) and hypothesis-made
YAML documents never escape as a traceback, never take unbounded time or memory, never leave
files behind, and what is accepted compiles."""
import collections
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xnorgen.frontend.description import read_description
from xnorgen.errors import XnorgenError

HERE = Path(__file__).parent
CASES, BUILDS = 1500, 40
#: Address space for the whole fuzz run: Python, numpy and the compiler's working set fit easily;
#: a case that allocates a claimed 10^12 elements or expands an alias bomb does not.
ADDRESS_SPACE = 3 << 30


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


@pytest.mark.slow
def test_mutated_examples_fail_cleanly_or_compile(tmp_path):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "XNORGEN_CACHE": str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, str(HERE / "fuzz_inputs.py"), "--seed", "0", "--cases", str(CASES),
                        "--builds", str(BUILDS), "--json"], capture_output=True, text=True, env=env,
                       preexec_fn=_limit_memory, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    results = json.loads(r.stdout)
    bad = [x for x in results if x["problem"]]
    assert not bad, "\n".join(f"{x['problem']}\n  {x['yaml'][:400]!r}" for x in bad[:5])
    codes = collections.Counter(x["code"] for x in results)
    # the mutations must keep reaching both outcomes, or this test has stopped testing anything
    assert codes[2] > CASES // 2 and codes[0] >= BUILDS, codes
    assert max(x["seconds"] for x in results) < 10
    kinds = collections.Counter(x["error"].split(": ")[-1][:25] for x in results if x["code"] == 2)
    assert len(kinds) > 50, kinds.most_common(10)         # many distinct refusals, not one early exit


# ---- hypothesis: arbitrary YAML-shaped documents against the description parser -----------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                     st.text(max_size=12), st.sampled_from(["conv2d", "dense", "xnor", "same", "input", "relu"]))
_values = st.recursive(_scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
    st.sampled_from(["name", "type", "filters", "kernel", "inputs", "units", "mode", "shape", "x"]), kids,
    max_size=4), max_leaves=20)
_layer = st.fixed_dictionaries({"name": st.one_of(st.text(max_size=6), st.sampled_from(["a", "b", "c"])),
                                "type": st.sampled_from(["conv2d", "dense", "relu", "maxpool", "add", "flatten", "x"])},
                               optional={"filters": _scalars, "kernel": _values, "units": _scalars,
                                         "inputs": _values, "mode": _scalars, "stride": _values,
                                         "padding": _values, "global": _scalars})
_doc = st.fixed_dictionaries({"name": st.one_of(st.just("n"), st.text(max_size=8)),
                              "input": st.one_of(st.just({"shape": [3, 8, 8]}), _values),
                              "layers": st.one_of(st.lists(_layer, min_size=1, max_size=5), _values)},
                             optional={"output": _values, "weights": _values})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_doc)
def test_any_document_is_a_description_or_one_xnorgen_error(tmp_path_factory, doc):
    import yaml
    path = tmp_path_factory.mktemp("h") / "net.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    try:
        desc = read_description(path)
    except XnorgenError as e:
        assert str(path) in e.where and e.what
        return
    assert desc.name == doc["name"] and len(desc.layers) == len(doc["layers"])
