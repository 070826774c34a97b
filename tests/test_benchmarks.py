"""benchmarks/ab.py: versions of the code timed side by side in one C harness."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from netgen import write_net

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs a git checkout")
def test_ab_times_a_revision_against_a_checkout(tmp_path):
    """HEAD (a temporary worktree) against this checkout: one row per version, the first a ratio
    of exactly 1, the worktree removed afterwards; the caches evicted by reading a buffer."""
    layer = {"name": "conv", "type": "conv2d", "mode": "xnor", "filters": 20, "kernel": 3, "padding": 1}
    net = write_net(tmp_path, "abnet", (70, 6, 7), [layer], np.random.default_rng(1))
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "ab.py"), str(net), "HEAD", str(REPO),
                          "--reps", "5", "--cold-mib", "1", "--cold-read"], check=True, capture_output=True, text=True, cwd=tmp_path).stdout
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| HEAD") or line.startswith(f"| {REPO}")]
    assert [r[0].strip() for r in rows] == ["HEAD", str(REPO)]
    assert "1 MiB read before every call" in out
    assert float(rows[0][3]) == 1.0 and float(rows[1][3]) > 0 and float(rows[1][1]) > 0
    worktrees = subprocess.run(["git", "-C", str(REPO), "worktree", "list"], capture_output=True, text=True).stdout
    assert "/checkouts/rev-" not in worktrees
