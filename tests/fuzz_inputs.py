"""Mutation fuzzing of what a stranger hands xnorgen: net.yaml and weights .npz (contract section 7).

Each case starts from a seed network (the examples' descriptions and weights), applies one to
three mutations (to the YAML text, to its parsed tree, or to the .npz), and runs
`xnorgen compile NET --target x86-64 -o out` in this process. A case passes if it ends with exit
status 0, or with status 2 and exactly one `error:` line that is not an internal error or an
out-of-memory, within CASE_SECONDS, leaving nothing but its own inputs (and, on success, out/).

Run by tests/test_fuzz.py in a subprocess with an address-space limit, so a case that allocates
without bound fails as MemoryError instead of taking the machine:
    python tests/fuzz_inputs.py --seed 0 --cases 1500 --json
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import shutil
import signal
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
SEEDS = [ROOT / "examples" / "digits" / f"digits_{m}.yaml" for m in ("float", "bwn", "xnor")] + \
        [ROOT / "examples" / "cifar_xnor.yaml"]
CASE_SECONDS = 10
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

#: Values a field may be replaced with: wrong types, boundaries, huge numbers, hostile strings.
NASTY = [0, -1, 1, 2, 3, 7, 2**31, 2**64, 10**40, 1.5, -0.0, float("nan"), float("inf"), 1e308, True, None, "",
         "same", "valid", "xnor", "bwn", "1:20", "0x10", [], {}, [1], [1, 2, 3], [0, 0], [2**40, 1], {"a": 1},
         "a*/\n__attribute__((constructor)) static void f(void){}\n/*", "x*??/\n/", "rtl\u202eevil", "..", "../x",
         "/etc/passwd", "layer_c", "c_w", "input", "stdint", "Python", "_STDINT", "xg_pack", "a" * 200, "é"]

TEXT_SNIPPETS = ["\n- &a [1, 2]\n", "*a", "{", "]", "\t", ": :", "!!python/object:os.system x", "? [1]\n: 2",
                 "\x00", "\ufeff", "<<: {x: 1}", "!!binary aGk=", "2001-12-14", "~", "'unterminated",
                 "[" * 50 + "]" * 50, "on", "yes", "0o17", "1_000", "-.inf"]


def _bomb(depth: int = 24) -> str:
    lines = ["name: bomb", "input: {shape: [1, 8, 8]}", "a0: &a0 [x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, depth)]
    return "\n".join(lines + [f"layers: [{{name: r, type: relu, inputs: [input]}}, *a{depth - 1}]", ""])


# ---- mutations: each takes (rng, case) and changes case["yaml"] (text) or case["npz"] (dict or bytes)

def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _tree_mutation(rng, case):
    if "&" in case["yaml"]:
        return                       # dumping an alias bomb's tree would expand it here
    doc = yaml.load(case["yaml"], Loader=_LOADER)
    paths = [p for p in _paths(doc) if p]
    if not paths:
        return
    path = rng.choice(paths)
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    op = rng.randrange(5)
    if op == 0 or op == 1:
        parent[path[-1]] = rng.choice(NASTY)
    elif op == 2:
        if isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    elif op == 3 and isinstance(parent, dict):
        parent[rng.choice(["kernal", "filters", "stride", "weights", "output", "inputs", "global", "shape"])] = \
            rng.choice(NASTY)
    elif isinstance(parent, list):
        parent.insert(rng.randrange(len(parent) + 1), parent[path[-1]])      # duplicate an item
    case["yaml"] = yaml.dump(doc, Dumper=_DUMPER, sort_keys=False, allow_unicode=True)


def _text_mutation(rng, case):
    text = case["yaml"]
    lines = text.splitlines()
    op = rng.randrange(6)
    if op == 0 and lines:
        del lines[rng.randrange(len(lines))]
    elif op == 1 and lines:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])                                     # duplicate keys or layers
    elif op == 2:
        i = rng.randrange(len(text) + 1)
        text = text[:i] + rng.choice(TEXT_SNIPPETS) + text[i:]
        case["yaml"] = text
        return
    elif op == 3:
        case["yaml"] = text[:rng.randrange(len(text) + 1)]
        return
    elif op == 4:
        case["yaml"] = _bomb(rng.randrange(8, 40))
        return
    else:
        case["yaml_bytes"] = text.encode()[:rng.randrange(len(text))] + bytes([rng.randrange(128, 256)]) * 3
        return
    case["yaml"] = "\n".join(lines) + "\n"


def _npz_mutation(rng, case):
    arrays = case["npz"]
    if not isinstance(arrays, dict) or not arrays:
        return
    key = rng.choice(sorted(arrays))
    a = arrays[key]
    op = rng.randrange(9)
    if op == 0:
        del arrays[key]
    elif op == 1:
        arrays[key] = a.reshape(-1)[:-1] if a.size > 1 else np.zeros(3, np.float32)
    elif op == 2:
        arrays[key] = a.astype(rng.choice([np.complex64, "m8[s]", "M8[D]", np.bool_, "U3", np.float16, np.int8]))
    elif op == 3:
        arrays[key] = a.astype(np.float64) * 1e300
    elif op == 4:
        arrays[key] = np.full_like(a, np.nan)
    elif op == 5:
        arrays["unused.big"] = np.zeros(10, np.float32)
    elif op == 6:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        data = bytearray(buf.getvalue())
        for _ in range(rng.randrange(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        case["npz"] = bytes(data)
    elif op == 7:
        case["npz"] = rng.choice([b"", b"PK\x03\x04", np.lib.format.magic(1, 0) + b"garbage", _npy_bytes(a)])
    else:
        case["npz"] = _lying_header(arrays, key)


def _npy_bytes(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _lying_header(arrays, key) -> bytes:
    """An .npz whose member `key` claims 10^12 elements (its data is a few bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in arrays.items():
            if k == key:
                header = io.BytesIO()
                np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                              "shape": (10**6, 10**6)})
                z.writestr(k + ".npy", header.getvalue() + b"\0" * 64)
            else:
                z.writestr(k + ".npy", _npy_bytes(v))
    return buf.getvalue()


#: Valid names (contract section 1) that are hard on the C side: collisions once sanitized,
#: names that look like generated symbols, the longest allowed.
HARD_NAMES = ["layer_c", "c_w", "a.b", "a-b", "a_b", "binarize_input", "w_c", "layer_w_c", "c_w_alpha", "main",
              "_x", "x" * 128, "Layer", "A.b-c_", "int8_t", "memcpy", "xg_pack_vector", "NULL", "infer"]


def _rename_mutation(rng, case):
    """Rename a layer to a valid but hard name, with its arrays and the references to it."""
    if "&" in case["yaml"] or not isinstance(case["npz"], dict):
        return
    doc = yaml.load(case["yaml"], Loader=_LOADER)
    layer = rng.choice(doc["layers"])
    old, new = layer["name"], rng.choice(HARD_NAMES)
    layer["name"] = new
    for other in doc["layers"]:
        if "inputs" in other:
            other["inputs"] = [new if i == old else i for i in other["inputs"]]
    if doc.get("output") == old:
        doc["output"] = new
    case["npz"] = {(new + k[len(old):] if k.startswith(old + ".") else k): v for k, v in case["npz"].items()}
    case["yaml"] = yaml.dump(doc, Dumper=_DUMPER, sort_keys=False)


MUTATIONS = [_tree_mutation, _tree_mutation, _tree_mutation, _text_mutation, _npz_mutation, _rename_mutation,
             _rename_mutation]


def make_case(rng, seeds):
    src = rng.choice(seeds)
    case = {"yaml": src["yaml"], "npz": dict(src["npz"]), "weights": src["weights"], "ops": []}
    for _ in range(rng.randrange(1, 4)):
        mutation = rng.choice(MUTATIONS)
        case["ops"].append(mutation.__name__.strip("_").replace("_mutation", ""))
        try:
            mutation(rng, case)
        except (yaml.YAMLError, TypeError, ValueError, KeyError, IndexError, AttributeError):
            pass                       # a mutation that does not apply to this case
    return case


def load_seeds():
    seeds = []
    for y in SEEDS:
        doc = yaml.safe_load(y.read_text())
        with np.load(y.parent / doc["weights"]) as z:
            arrays = {k: z[k] for k in z.files}
        seeds.append({"yaml": y.read_text(), "npz": arrays, "weights": doc["weights"]})
    return seeds


# ---- running a case --------------------------------------------------------------------

def _alarm(signum, frame):
    raise TimeoutError(f"case took more than {CASE_SECONDS} s")


def _builds(out: Path) -> str | None:
    """None if the generated sources compile: the target's flags and the Makefile's -Werror, but
    -fsyntax-only -O0 (a full -O3 build takes seconds; tests/test_sanitizers.py links real ones)."""
    import subprocess

    from xnorgen.target import resolve
    flags = [f for f in resolve("x86-64").cflags if not f.startswith("-O")]
    for c in sorted(out.glob("*.c")):
        r = subprocess.run(["gcc", *flags, "-O0", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", str(c)],
                           capture_output=True, text=True, cwd=out)
        if r.returncode != 0:
            return f"{c.name} does not compile: {r.stderr.strip()[-300:]}"
    return None


def run_case(case, work: Path, build: bool = False) -> dict:
    """Write the case into an empty work dir, run `compile`, and judge the result (build: also
    `make` an accepted case's library)."""
    from xnorgen.cli import main
    (work / "net.yaml").write_bytes(case.get("yaml_bytes") or case["yaml"].encode())
    weights = case["weights"] if isinstance(case["weights"], str) and "/" not in case["weights"] else "w.npz"
    if isinstance(case["npz"], dict):
        with open(work / weights, "wb") as f:
            np.savez(f, **case["npz"])
    else:
        (work / weights).write_bytes(case["npz"])
    before = sorted(p.name for p in work.iterdir())
    err, out = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    code, crash = None, None
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            main(["compile", str(work / "net.yaml"), "--target", "x86-64", "-o", str(work / "out")],
                 prog_name="xnorgen")
    except SystemExit as e:
        code = e.code
    except BaseException as e:             # noqa: B036 -- anything escaping the CLI is a finding
        crash = f"{type(e).__name__}: {str(e)[:200]}"
    finally:
        signal.alarm(0)
    seconds = time.perf_counter() - t0
    lines = err.getvalue().strip().splitlines()
    errors = [ln for ln in lines if not ln.startswith("warning: ")]
    after = sorted(p.name for p in work.iterdir())
    problem = None
    if crash:
        problem = f"escaped the CLI: {crash}"
    elif code not in (0, 2):
        problem = f"exit status {code}"
    elif code == 2 and (len(errors) != 1 or not errors[0].startswith("error: ")):
        problem = f"not one error line: {lines[:3]}"
    elif code == 2 and ("internal error" in errors[0] or "out of memory" in errors[0]):
        problem = errors[0][:300]
    elif code == 2 and after != before:
        problem = f"left files behind: {sorted(set(after) - set(before))}"
    elif code == 0 and after != sorted(before + ["out"]):
        problem = f"wrote unexpected files: {after}"
    elif code == 0 and build:
        problem = _builds(work / "out")
    return {"code": code, "problem": problem, "seconds": seconds, "error": errors[0][:300] if errors else None}


def run_cases(seed: int, n: int, builds: int = 0) -> list[dict]:
    """n cases from one seed; the first `builds` accepted ones are also built with make."""
    rng = random.Random(seed)
    seeds = load_seeds()
    results = []
    with tempfile.TemporaryDirectory(prefix="xnorgen-fuzz-") as d:
        for i in range(n):
            case = make_case(rng, seeds)
            work = Path(d) / str(i)
            work.mkdir()
            r = run_case(case, work, build=builds > 0)
            r["ops"] = case["ops"]
            builds -= r["code"] == 0
            if r["problem"]:
                r["yaml"] = (case.get("yaml_bytes") or case["yaml"].encode())[:2000].decode("utf-8", "replace")
            results.append(r)
            shutil.rmtree(work, ignore_errors=True)
    return results


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--builds", type=int, default=0, help="make the first N accepted cases' libraries")
    ap.add_argument("--json", action="store_true", help="print every result as JSON (for the test)")
    a = ap.parse_args()
    res = run_cases(a.seed, a.cases, a.builds)
    if a.json:
        json.dump(res, sys.stdout)
    else:
        bad = [r for r in res if r["problem"]]
        for op in ("tree", "text", "npz", "rename"):
            mine = [r for r in res if op in r["ops"]]
            print(f"{op:7} {len(mine):5} cases: {sum(r['code'] == 0 for r in mine):4} accepted, "
                  f"{sum(r['code'] == 2 and not r['problem'] for r in mine):4} one-line errors, "
                  f"{sum(bool(r['problem']) for r in mine)} problems")
        print(f"{len(res)} cases, {sum(r['code'] == 0 for r in res)} accepted, {len(bad)} problems, "
              f"slowest {max(r['seconds'] for r in res):.2f} s")
        for r in bad[:20]:
            print("-", r["problem"], "|", repr(r.get("yaml", ""))[:300])
