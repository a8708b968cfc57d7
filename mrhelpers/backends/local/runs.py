"""Pipeline runs on the local backend: kfp.local with ``SubprocessRunner(use_venv=False)``.

The run is finished when :func:`submit_local` returns. The registry token is put into the environment
the tasks inherit (``MODEL_REGISTRY_TOKEN``) for the duration of the run only, since kfp.local ignores
``use_secret_as_env``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mrhelpers.authoring.runs import (
    ANSI,
    FAILED,
    LOG_NAME,
    SUCCEEDED,
    RunHandle,
    kfp_local_log,
    plain,
    print_tasks,
    remember,
    task_lines,
    token_in_env,
)
from mrhelpers.core.errors import RunFailed
from mrhelpers.core.progress import Progress
from mrhelpers.core.settings import Settings


def run_component_local(component: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """kfp.local runs ``component`` here, in this environment; its outputs by name."""
    from kfp import local

    root = Path(settings.pipeline_root)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    log = root / f".{component.component_spec.name}-{time.time_ns()}.log"
    error = None
    with token_in_env(settings), kfp_local_log(log):
        try:
            task = component(**arguments)
        except RuntimeError as exc:
            error = ANSI.sub("", str(exc))
    log = into_run_dir(log, root, component.component_spec.name.replace("_", "-"))
    print_tasks(task_lines(log), log, failed=error is not None)
    if error is not None:
        raise RunFailed(f"{error} The log's tail is above; the whole log: {log}.")
    return {k: plain(v) for k, v in (task.outputs or {}).items()}


def into_run_dir(log: Path, root: Path, prefix: str) -> Path:
    """Move a run's log into the newest run folder whose name starts with ``prefix`` (kfp.local made it)."""
    runs = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(prefix)]
    if not runs:
        return log
    target = max(runs, key=lambda p: p.stat().st_mtime) / LOG_NAME
    log.replace(target)
    return target


def submit_local(pipeline: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> RunHandle:
    from kfp import local

    root = Path(settings.pipeline_root)
    root.mkdir(parents=True, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    name = pipeline.pipeline_spec.pipeline_info.name
    before = {p.name for p in root.iterdir()}
    start = time.monotonic()
    state, error, outputs = SUCCEEDED, None, {}

    log = root / f".{name}-{time.time_ns()}.log"
    with token_in_env(settings), Progress(f"Running pipeline {name!r} with kfp.local") as progress:
        with kfp_local_log(log):
            try:
                task = pipeline(**arguments)
                outputs = {k: plain(v) for k, v in (task.outputs or {}).items()}
            except RuntimeError as exc:
                state, error = FAILED, ANSI.sub("", str(exc))
        progress.done(state)
    seconds = time.monotonic() - start
    new = sorted(p for p in root.iterdir() if p.name not in before and p.name.startswith(name) and p.is_dir())
    run_dir = new[-1] if new else None
    if run_dir is not None:
        log = log.replace(run_dir / LOG_NAME)
    tasks = task_lines(log)
    print_tasks(tasks, log, failed=state != SUCCEEDED)
    handle = RunHandle(
        backend="local",
        pipeline=name,
        state=state,
        outputs=outputs,
        run_id=outputs.get("run_id"),
        run_name=outputs.get("run_name") or (run_dir.name if run_dir else None),
        url=run_dir.resolve().as_uri() if run_dir else None,
        seconds=seconds,
        error=error,
        tasks=tasks,
        log=str(log),
    )
    remember(settings, handle, arguments)
    return handle
