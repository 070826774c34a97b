"""examples/ run as tests."""
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_runs_and_agrees(tmp_path):
    r = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py"), "--out", str(tmp_path / "out")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "argmax agreement 100%" in r.stdout
    assert (tmp_path / "out" / "cifar_xnor.h").exists()
