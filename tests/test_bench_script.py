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
