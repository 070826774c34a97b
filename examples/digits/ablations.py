"""Rerun the accuracy table of examples/digits/README.md.

    python examples/digits/ablations.py                     # 3 seeds, 12 epochs, prints the table
    python examples/digits/ablations.py --update-readme     # and rewrites the table in README.md

Rows: the paper's Table 1 at small scale (float, BWN, XNOR-Net on the same CNN),
Table 3a (alpha by equation 6 vs alpha learned as a parameter), Table 3b (block
order B-A-C-P vs C-B-A-P) and XNOR-Net without K (scale_input: false).
Every number is a test accuracy on the same fixed held-out split (359 images).
"""
from __future__ import annotations

import os

# The matrices here are small: one BLAS thread per process is several times faster than
# threads fighting over 2 cores (and keeps the run-to-run arithmetic identical).
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import copy
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

import xnorgen
from xnorgen.training.data import load_dataset
from xnorgen.training.trainer import fit

HERE = Path(__file__).resolve().parent


def base(mode):
    return yaml.safe_load((HERE / f"digits_{mode}.yaml").read_text())


def no_k(doc):
    doc = copy.deepcopy(doc)
    doc["name"] += "_nok"
    for lay in doc["layers"]:
        if lay.get("mode") == "xnor":
            lay["scale_input"] = False
    return doc


def cbap(doc):
    """C-B-A-P blocks: binary conv, BatchNorm, sign, pool (the pool sees binary values)."""
    doc = copy.deepcopy(doc)
    doc["name"] += "_cbap"
    L = {lay["name"]: lay for lay in doc["layers"]}
    doc["layers"] = [
        L["conv1"], {"name": "bn1", "type": "batchnorm"},
        L["conv2"], {"name": "bn2", "type": "batchnorm"}, {"name": "sign2", "type": "sign"}, L["pool2"],
        L["conv3"], {"name": "bn3", "type": "batchnorm"}, {"name": "sign3", "type": "sign"}, L["pool3"],
        L["flat"], L["fc"], L["prob"],
    ]
    return doc


# (table, row label, description doc, train options)
CONFIGS = [
    ("Table 1", "float (full precision)", lambda: base("float"), {}),
    ("Table 1", "BWN (binary weights)", lambda: base("bwn"), {}),
    ("Table 1", "XNOR-Net (binary weights and inputs)", lambda: base("xnor"), {}),
    ("Table 3a", "BWN, alpha by eq. 6", lambda: base("bwn"), {}),
    ("Table 3a", "BWN, alpha learned", lambda: base("bwn"), {"learn_alpha": True}),
    ("Table 3a", "XNOR-Net, alpha by eq. 6", lambda: base("xnor"), {}),
    ("Table 3a", "XNOR-Net, alpha learned", lambda: base("xnor"), {"learn_alpha": True}),
    ("Table 3b", "XNOR-Net, B-A-C-P", lambda: base("xnor"), {}),
    ("Table 3b", "XNOR-Net, C-B-A-P", lambda: cbap(base("xnor")), {}),
    ("K", "XNOR-Net with K", lambda: base("xnor"), {}),
    ("K", "XNOR-Net without K (scale_input: false)", lambda: no_k(base("xnor")), {}),
]


def run(seeds, epochs, progress):
    cache, rows = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for table, label, make, opts in CONFIGS:
            doc = make()
            key = (yaml.safe_dump(doc), json.dumps(opts, sort_keys=True))
            if key not in cache:
                path = Path(tmp) / f"{doc['name']}{'_la' if opts else ''}.yaml"
                doc = dict(doc, weights=f"{path.stem}.npz")
                path.write_text(yaml.safe_dump(doc, sort_keys=False))
                net = xnorgen.load(path, weights=False)
                data = load_dataset("digits", net.input_shape)
                runs = []
                for seed in seeds:
                    r = fit(net, data, epochs=epochs, seed=seed, progress=progress, **opts)
                    runs.append({"seed": seed, "test_acc": r.test_accuracy, "train_acc": r.train_accuracy,
                                 "seconds": r.seconds, "optimizer": r.optimizer})
                    print(f"  {label}: seed {seed} test {100 * r.test_accuracy:.2f}% "
                          f"({r.seconds:.0f}s)", file=sys.stderr, flush=True)
                cache[key] = runs
            rows.append({"table": table, "label": label, "runs": cache[key]})
    return rows


def table(rows, seeds, epochs):
    acc = lambda r: np.array([x["test_acc"] for x in r["runs"]]) * 100  # noqa: E731
    lines = [f"Test accuracy on the 359 held-out digits, {epochs} epochs, seeds {', '.join(map(str, seeds))} "
             f"(mean ± std over seeds; per-seed values; mean training time per model).", "",
             "| table | configuration | test accuracy | per seed | optimizer | train time |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        a = acc(r)
        secs = np.mean([x["seconds"] for x in r["runs"]])
        lines.append(f"| {r['table']} | {r['label']} | {a.mean():.2f} ± {a.std():.2f} % | "
                     f"{' / '.join(f'{v:.2f}' for v in a)} | {r['runs'][0]['optimizer']} | {secs:.0f} s |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--update-readme", action="store_true", help="replace the table in examples/digits/README.md")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = run(args.seeds, args.epochs, not args.quiet)
    text = table(rows, args.seeds, args.epochs)
    text += f"\n\nGenerated by `python examples/digits/ablations.py` in {time.perf_counter() - t0:.0f} s."
    print(text)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    if args.update_readme:
        readme = HERE / "README.md"
        s = readme.read_text()
        new, n = re.subn(r"(<!-- table:begin -->\n).*?(\n<!-- table:end -->)", lambda m: m[1] + text + m[2],
                         s, flags=re.S)
        if n != 1:
            sys.exit("README.md has no <!-- table:begin --> / <!-- table:end --> markers")
        readme.write_text(new)


if __name__ == "__main__":
    main()
