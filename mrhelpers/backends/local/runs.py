"""Pipeline runs on the local backend: kfp.local, one run at a time in this process.

Each run uses a copy of the pipeline whose task processes get the registry token in their own
environment and write their output to the run's log (docs/settings.md says why). This process's
``os.environ``, ``sys.stdout`` and a kfp.local set-up of the reader's own stay as they are.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mrhelpers.authoring import handles
from mrhelpers.authoring.handles import FAILED, SUCCEEDED, RunHandle
from mrhelpers.core.errors import RunFailed
from mrhelpers.core.settings import TOKEN_ENV, Settings

_ONE_RUN = threading.Lock()
"""kfp.local swaps ``builtins.print`` and the root logger's handlers while a task runs: one run at a time."""
_TO_LOG = ("sh", "-c", 'log=$1 task=$2; shift 2; echo "$(date +%T.%3N) - INFO - Executing task \'$task\'" >>"$log"; '
           '"$@" >>"$log" 2>&1 && s=SUCCESS || s=FAILURE; '
           'echo "$(date +%T.%3N) - INFO - Task \'$task\' finished with status $s" >>"$log"; [ $s = SUCCESS ]',
           "mrh-task")  # fmt: skip
"""Runs a task's command with its output appended to a log, between kfp.local's own start and end lines."""


def for_this_run(component: Any, token: str, log: Path) -> Any:
    """A copy of a pipeline or component whose task processes get ``token`` as ``MODEL_REGISTRY_TOKEN``
    and append their output to ``log``; ``component`` itself is unchanged."""
    spec = copy.deepcopy(component.component_spec)
    env = {TOKEN_ENV: token} if token else {}
    graph = spec.implementation.graph
    if graph is None:
        container = spec.implementation.container
        container.env = {**(container.env or {}), **env}
        container.command = [*_TO_LOG, str(log), spec.name.replace("_", "-"), *container.command]
    else:
        for label, executor in graph.deployment_spec["executors"].items():
            container = executor["container"]
            given = [dict(e) for e in container["env"]] if "env" in container else []
            container["env"] = [*given, *({"name": k, "value": v} for k, v in env.items())]
            container["command"] = [*_TO_LOG, str(log), label.removeprefix("exec-"), *container["command"]]
    run = copy.copy(component)
    run.component_spec = spec
    return run


def _run_here(component: Any, arguments: dict[str, Any], settings: Settings, name: str) -> RunHandle:
    """Run a pipeline or component with kfp.local, the log moved into the run's folder."""
    from kfp import local
    from kfp.local import config

    with _ONE_RUN:
        if config.LocalExecutionConfig.instance is None:  # else the reader's own kfp.local.init holds
            local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=settings.pipeline_root)
        root = Path(config.LocalExecutionConfig.instance.pipeline_root)
        root.mkdir(parents=True, exist_ok=True)
        before = {p.name for p in root.iterdir()}
        log = root / f".{name}-{time.time_ns()}.log"
        start, task, error = time.monotonic(), None, None
        try:
            task = for_this_run(component, settings.token.reveal(), log)(**arguments)
        except RuntimeError as exc:
            error = handles.ANSI.sub("", str(exc))
        seconds = time.monotonic() - start
    runs = sorted(p for p in root.iterdir() if p.is_dir() and p.name not in before and p.name.startswith(name))
    run_dir = runs[-1] if runs else None
    if run_dir and log.exists():
        log = log.replace(run_dir / handles.LOG_NAME)
    tasks = handles.task_lines(log) if log.exists() else []
    failed = [t["task"] for t in tasks if t["state"] != SUCCEEDED]
    error = error or (f"task {failed[0]!r} failed" if failed else None)
    handles.print_tasks(tasks, log, failed=error is not None)
    outputs = {k: handles.plain(v) for k, v in (task.outputs or {}).items()} if task is not None and not error else {}
    return RunHandle("local", name, FAILED if error else SUCCEEDED, outputs, outputs.get("run_id"),
                     outputs.get("run_name") or (run_dir.name if run_dir else None),
                     run_dir.resolve().as_uri() if run_dir else None, seconds, error, tasks, str(log))  # fmt: skip


def run_component_local(component: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """kfp.local runs ``component`` here, in this environment; its outputs by name."""
    run = _run_here(component, arguments, settings, component.component_spec.name.replace("_", "-"))
    if run.error is not None:
        raise RunFailed(f"{run.error} The log's tail is above; the whole log: {run.log}.")
    return run.outputs


def submit_local(pipeline: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> RunHandle:
    """kfp.local runs ``pipeline`` here; the run has ended when this returns."""
    handle = _run_here(pipeline, arguments, settings, pipeline.pipeline_spec.pipeline_info.name)
    handles.remember(settings, handle, arguments)
    return handle
