"""benchmarks/bench.py: one layer, a few interleaved rounds, the table written with its setup."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_runs_one_layer_and_writes_its_table(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import bench
    md = tmp_path / "table.md"
    rows = bench.main(["--only", "L3", "--reps", "3", "--markdown", str(md)])
    assert [r[0] for r in rows] == ["L3"]
    name, med, total, binary, sim = rows[0]
    assert med["xnorgen"] > 0 and binary == total == 512 * 7 * 7 * 512 * 9
    lines = md.read_text().splitlines()
    assert lines[2] == bench.HEADER and lines[4].startswith("| L3 | ")
    cells = lines[4].strip("|").split("|")
    assert len(cells) == 10
    if "onnxruntime" in med:                  # the bench extra is installed
        assert med["round ratio"] > 0 and cells[5].strip().endswith("x")
    else:
        assert cells[5].strip() == "-"


@pytest.mark.slow
def test_sim_vs_measured_pairs_every_kernel_with_its_prediction(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import sim_vs_measured
    from netgen import write_net
    path = write_net(tmp_path, "n", (64, 12, 12), [
        {"name": "c1", "type": "conv2d", "mode": "xnor", "filters": 64, "kernel": 3, "padding": 1},
        {"name": "p", "type": "maxpool", "kernel": 2, "stride": 2}])
    md = tmp_path / "t.md"
    assert sim_vs_measured.main([str(path), "--reps", "3", "--markdown", str(md)]) == 0
    text = md.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| n_")]
    # the input stage, the conv and the pool, each with a measured and a predicted count
    assert [r.split("|")[1].strip() for r in rows] == ["n_binarize_input", "n_layer_c1", "n_layer_p"]
    for r in rows:
        measured, predicted = (float(c.replace(",", "")) for c in r.split("|")[2:4])
        assert measured > 0 and predicted > 0
    assert "geometric mean predicted/measured" in text
