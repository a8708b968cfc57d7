"""Run the tutorial notebooks headless with papermill, in order.

Executed copies are written to the output folder as each notebook runs, so a
failing notebook can be read there afterwards.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mrhelpers.core.errors import InvalidInput, MRHelpersError
from mrhelpers.core.inspection import mask_credentials
from mrhelpers.core.settings import project_root

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


def __getattr__(name: str) -> Any:
    # The kernel manager class is built on first use, so importing this module stays light.
    if name == "LocalKernelManager":
        from jupyter_client.manager import AsyncKernelManager
        from traitlets import default

        class LocalKernelManager(AsyncKernelManager):
            """Talks to the kernel over unix sockets (ipc), not TCP: nothing listens on the network."""

            @default("transport")
            def _default_transport(self) -> str:
                return "ipc"

        globals()["LocalKernelManager"] = LocalKernelManager
        return LocalKernelManager
    raise AttributeError(name)


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

    The notebooks' kernels start the local stack with the token-checking proxy (``MRH_AUTH=1``)
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
                kernel_manager_class="mrhelpers.tutorial.runner.LocalKernelManager",
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
