"""Refresh the outputs committed with the notebooks (the output policy).

Committed notebooks carry outputs only in cells marked ``# NBVAL_CHECK_OUTPUT``: the outputs
(and execution count) a fresh local-backend run gives, which nbval compares against. Every other
output and execution count is stripped. Run after changing a notebook:

    .venv/bin/python -m tests.refresh_notebook_outputs
"""

import os
import sys
import tempfile
from pathlib import Path

import nbformat

MARK = "# NBVAL_CHECK_OUTPUT"


def apply_policy(committed: nbformat.NotebookNode, executed: nbformat.NotebookNode | None) -> nbformat.NotebookNode:
    """Keep outputs of marked cells (from ``executed``); strip all other outputs and counts."""
    executed_cells = {c.source: c for c in executed.cells} if executed is not None else {}
    for cell in committed.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        if MARK in cell.source and cell.source in executed_cells:
            # nbval needs the count on a reference cell; in a fresh kernel it is the same every run
            cell.execution_count = executed_cells[cell.source].execution_count
            cell.outputs = executed_cells[cell.source].outputs
        elif MARK not in cell.source:
            cell.execution_count = None
            cell.outputs = []
    return committed


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "setup"))
    import localstack  # setup/localstack.py
    from run_notebooks import CLEANUP, TUTORIAL, notebooks_dir, run_notebooks

    from mrhelpers.core.settings import Settings, default_bin_dir

    state = Path(tempfile.mkdtemp(prefix="mrh-refresh-"))
    for key in [k for k in os.environ if k.startswith("MRH_")]:
        del os.environ[key]
    os.environ["MRH_STATE_DIR"] = str(state)
    out = state / "executed"
    try:
        results = run_notebooks(out, {"backend": "local"}, names=[*TUTORIAL, CLEANUP])
    finally:
        localstack.down(Settings(state_dir=state, bin_dir=default_bin_dir()), quiet=True)
    failed = [r for r in results if r.status != "ok"]
    if failed:
        print(f"not refreshed: {failed[0].notebook} failed: {failed[0].error}", file=sys.stderr)
        return 1
    for result in results:
        path = notebooks_dir() / f"{result.notebook}.ipynb"
        nb = apply_policy(nbformat.read(path, as_version=4), nbformat.read(result.output, as_version=4))
        nbformat.write(nb, path)
        print(f"refreshed {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
