"""Run the tutorial notebooks headless with papermill, in order (``make tutorial``).

    python setup/run_notebooks.py [--output build/notebooks] [-p NAME VALUE ...] [--only 00,01,...]

Executed copies are written to the output folder as each notebook runs, so a failing notebook can be read
there afterwards; then the report (``setup/report.py``) and what the tutorial registered are shown.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from report import build_report

from mrhelpers.core.errors import InvalidInput, MRHelpersError
from mrhelpers.core.inspection import mask_credentials, versions_frame
from mrhelpers.core.registry import connect
from mrhelpers.core.settings import Settings, project_root

TUTORIAL = (
    "00_cluster_setup",
    "01_registry_secret",
    "02_component_authoring",
    "03_compile_pipeline",
    "04_submit_run",
    "05_inspect_registry",
    "06_train_gate_promote",
    "07_registry_to_serving",
)


CLEANUP = "99_cleanup"
"""Run on its own, when you are done: it archives what the tutorial registered and stops the stack."""

TUTORIAL_MODELS = (
    "tutorial-scratch",
    "tutorial-component-check",
    "tutorial-regressor",
    "tutorial-regressor-packaged",
    "tutorial-classifier",
)
"""The models the notebooks register (notebook 99 archives them)."""

SUMMARY_ROWS = 10
"""Newest versions shown per tutorial model in the closing summary."""
SUMMARY_WIDTH = 60
"""Characters shown of each value in the closing summary (a URI may hold 65,535 bytes)."""


def kernel_manager_class() -> type:
    """A kernel manager that talks to the kernel over unix sockets (ipc), not TCP: nothing listens on the network."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class LocalKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

    return LocalKernelManager


@dataclasses.dataclass(frozen=True)
class NotebookResult:
    """One executed notebook."""

    notebook: str
    status: str
    seconds: float
    output: str
    error: str | None = None


def notebooks_dir() -> Path:
    """The clone's ``notebooks/`` folder."""
    root = project_root()
    if root is None:
        raise MRHelpersError("The notebooks ship with a clone of the project; run this from one.")
    return root / "notebooks"


def notebook_parameters(path: Path) -> set[str]:
    """Names defined in the notebook's cell tagged ``parameters``."""
    import papermill

    return set(papermill.inspect_notebook(str(path)))


def pick_notebooks(only: str | Sequence[str] = "") -> tuple[str, ...]:
    """The tutorial notebooks named by number or name (``"00,01,05"``), in the order given; all when empty.

    Raises:
        InvalidInput: For a name that matches no notebook, or more than one.
    """
    wanted = [w.strip() for w in (only.split(",") if isinstance(only, str) else only) if w.strip()]
    if not wanted:
        return TUTORIAL
    everything = (*TUTORIAL, CLEANUP)
    picked = []
    for w in wanted:
        matches = [n for n in everything if n == w or n.startswith(f"{w}_")]
        if len(matches) != 1:
            raise InvalidInput("notebook", w, f"a number or name from {', '.join(everything)}")
        picked.append(matches[0])
    return tuple(picked)


def run_notebooks(
    output_dir: str | Path,
    parameters: dict[str, Any] | None = None,
    names: Sequence[str] = TUTORIAL,
    *,
    stop_on_error: bool = True,
    quiet: bool = False,
) -> list[NotebookResult]:
    """Execute notebooks in order with papermill.

    Args:
        output_dir: Where the executed copies go (created; kept even on failure).
        parameters: Values for the ``parameters`` cells. Each notebook gets the
            ones it declares; a name no notebook declares raises InvalidInput.
        names: Which notebooks, in order (default: all, 00 to 07).
        stop_on_error: Stop at the first failing notebook (default True).
        quiet: Print no progress.

    Notebook 00 starts the local stack (``make up``) with the token-checking proxy (``MRH_AUTH=1``)
    unless ``MRH_AUTH`` is set (``MRH_AUTH=0``: no proxy for a stack that never had one).

    Returns:
        One :class:`NotebookResult` per executed notebook; ``summary.json`` in
        ``output_dir`` holds the same.
    """
    parameters = dict(parameters or {})
    folder = notebooks_dir()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = folder / f"{name}.ipynb"
        if not path.is_file():
            raise InvalidInput("notebook", name, f"one of {', '.join((*TUTORIAL, CLEANUP))}")
        paths.append(path)
    declared = {p.stem: notebook_parameters(p) for p in paths}
    unknown = set(parameters) - set().union(*declared.values())
    if unknown:
        raise InvalidInput(
            "notebook parameter",
            sorted(unknown)[0],
            f"a name from a parameters cell: {', '.join(sorted(set().union(*declared.values())))}",
        )
    results: list[NotebookResult] = []
    auth_default = "MRH_AUTH" not in os.environ
    if auth_default:
        os.environ["MRH_AUTH"] = "1"  # the kernels inherit it; restored below
    try:
        _run_each(paths, out, parameters, declared, results, stop_on_error=stop_on_error, quiet=quiet)
    finally:
        if auth_default:
            os.environ.pop("MRH_AUTH", None)
    (out / "summary.json").write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=2))
    return results


def _run_each(
    paths: list[Path],
    out: Path,
    parameters: dict[str, Any],
    declared: dict[str, set[str]],
    results: list[NotebookResult],
    *,
    stop_on_error: bool,
    quiet: bool,
) -> None:
    import papermill

    folder = notebooks_dir()
    manager = kernel_manager_class()
    for path in paths:
        target = out / path.name
        own = {k: v for k, v in parameters.items() if k in declared[path.stem]}
        if not quiet:
            print(f"[{len(results) + 1}/{len(paths)}] {path.stem} ...", flush=True)
        start = time.monotonic()
        status, error = "ok", None
        try:
            papermill.execute_notebook(
                str(path),
                str(target),
                parameters=own,
                kernel_name="python3",
                kernel_manager_class=manager,
                cwd=str(folder),
                progress_bar=False,
                log_output=False,
            )
        except Exception as exc:  # papermill wraps cell errors; the copy is written
            status, error = (
                "failed",
                f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}",
            )

        error = mask_credentials(error)
        result = NotebookResult(path.stem, status, round(time.monotonic() - start, 1), str(target), error)
        results.append(result)
        if not quiet:
            print(
                f"      {status} in {result.seconds:.1f} s -> {target}" + (f"\n      {error}" if error else ""),
                flush=True,
            )
        if status != "ok" and stop_on_error:
            break


def registered_table(settings: Settings) -> str:
    """The tutorial's own models (not the rest of the registry): their newest versions, each value cut short."""
    import pandas as pd

    registry = connect(settings, retries=2)
    frames = [f for f in (versions_frame(registry, name) for name in TUTORIAL_MODELS) if len(f)]
    if not frames:
        return "(the registry holds none of the tutorial's models)"
    cols = ["model", "version", "version_id", "source_kind", "source_class", "source_id", "uri"]
    table = pd.concat([f[cols].tail(SUMMARY_ROWS) for f in frames], ignore_index=True)
    short = table.map(lambda x: x[: SUMMARY_WIDTH - 3] + "..." if isinstance(x, str) and len(x) > SUMMARY_WIDTH else x)
    hidden = sum(len(f) for f in frames) - len(table)
    more = f"\n({hidden} older versions not shown: mh.versions_frame(registry, name) lists them all)" if hidden else ""
    return short.to_string(index=False) + more


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="setup/run_notebooks.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="build/notebooks", help="executed notebooks (default build/notebooks)")
    parser.add_argument(
        "-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
        help="a notebook parameter (repeatable), for example -p backend local",
    )  # fmt: skip
    parser.add_argument("--only", default="", help="notebook numbers or names, in order, for example 00,01,05")
    args = parser.parse_args(argv)
    try:
        results = run_notebooks(args.output, dict(args.parameter), pick_notebooks(args.only))
        failed = [r for r in results if r.status != "ok"]
        print(f"\nExecuted notebooks: {Path(args.output).resolve()}")
        print(f"Report: {build_report(args.output, Path(args.output).parent / 'report').resolve()}")
        if failed:
            print(f"FAILED: {failed[0].notebook}: {failed[0].error}\nOpen {failed[0].output} to see the failing cell.")
            return 1
        if CLEANUP in {r.notebook for r in results}:
            return 0  # it archived the models and stopped the stack: nothing left to show
        after = Settings.from_env(backend=dict(args.parameter).get("backend"))
        print("\nWhat the tutorial registered (its models' newest versions):")
        print(registered_table(after))
        if after.backend == "local":
            print("\nThe local stack keeps running for JupyterLab (`make lab`); stop it with `make down`.")
        return 0
    except MRHelpersError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
