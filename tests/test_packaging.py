"""A plain `pip install .` must work from outside the repo: templates/ and targets/ ship in the wheel."""
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_templates_targets_and_simulator(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("xnorgen-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (ROOT / "templates").glob("*.j2"):
        assert f"xnorgen/templates/{template.name}" in names
    for target in (ROOT / "targets").glob("*.yaml"):
        assert f"xnorgen/targets/{target.name}" in names
    assert "xnorgen/sim/__init__.py" in names and "xnorgen/cli.py" in names
    for package in (ROOT / "xnorgen").rglob("__init__.py"):      # every subpackage, e.g. kinds/
        assert f"xnorgen/{package.relative_to(ROOT / 'xnorgen').as_posix()}" in names, package
