import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.fail("ruff is not installed: run `make install` (it comes with the dev extra)")
    out = subprocess.run([ruff, "check", "mrhelpers", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_notebooks_are_ruff_clean():
    nbqa = Path(sys.executable).with_name("nbqa")
    if not nbqa.exists():
        pytest.fail("nbqa is not installed: run `make install` (it comes with the dev extra)")
    out = subprocess.run([str(nbqa), "ruff", "notebooks"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
