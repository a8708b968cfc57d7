"""nbval re-executes every notebook (00-07, then 99) on a fresh local stack, behind the token check as by
default, and compares the outputs of the cells marked ``# NBVAL_CHECK_OUTPUT`` with the ones committed."""

import os
import subprocess
import sys

import localstack  # setup/localstack.py

from mrhelpers.core.settings import Settings, default_bin_dir
from tests.notebooks.conftest import ROOT


def test_marked_cells_give_the_committed_outputs(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRH_")}
    env["MRH_STATE_DIR"] = str(tmp_path / "state")
    env["MRH_AUTH"] = "1"  # as make tutorial and run-notebooks run them: behind the token check
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
             "--sanitize-with", "tests/nbval_sanitize.cfg", "-q", "notebooks/"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200,
        )  # fmt: skip
    finally:
        localstack.down(Settings(state_dir=tmp_path / "state", bin_dir=default_bin_dir()), quiet=True)
    tail = "\n".join(proc.stdout.splitlines()[-40:])
    assert proc.returncode == 0, tail
    assert " passed" in tail and " failed" not in tail
