import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_make_lint_is_clean():
    """`make lint`: ruff on the package, tests and benchmarks, nbqa ruff on the notebooks, shellcheck on the
    scripts, actionlint (with shellcheck) on the hosted-CI workflow."""
    for tool in ("ruff", "nbqa", "shellcheck"):
        if not Path(sys.executable).with_name(tool).exists():
            pytest.fail(f"{tool} is not installed: run `make install` (it comes with the dev extra)")
    out = subprocess.run(["make", "-s", "lint"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_lint_catches_a_broken_script_and_workflow(tmp_path):
    """The linters run here really fail on what they should catch (not a silently skipped check)."""
    bad_script = tmp_path / "bad.sh"
    bad_script.write_text("#!/usr/bin/env bash\nrm -rf $1/*\n")
    out = subprocess.run(
        [Path(sys.executable).with_name("shellcheck"), str(bad_script)], capture_output=True, text=True
    )
    assert out.returncode == 1 and "SC2086" in out.stdout
    bad_flow = tmp_path / "bad.yml"
    bad_flow.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.evnt }}\n"
    )
    out = subprocess.run([ROOT / ".mrh" / "bin" / "actionlint", str(bad_flow)], capture_output=True, text=True)
    assert out.returncode == 1 and "evnt" in out.stdout
