import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_make_lint_is_clean():
    """`make lint`: ruff on the package, tests and benchmarks, and nbqa ruff on the notebooks."""
    for tool in ("ruff", "nbqa"):
        if not Path(sys.executable).with_name(tool).exists():
            pytest.fail(f"{tool} is not installed: run `make install` (it comes with the dev extra)")
    out = subprocess.run(["make", "-s", "lint"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
