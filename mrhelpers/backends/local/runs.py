"""Pipeline runs on the local backend: kfp.local in a child Python process.

The child's environment holds the registry token (its tasks inherit it) and its output goes to the run's
log; this process's ``os.environ``, ``sys.stdout`` and kfp.local set-up stay as they are (docs/settings.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mrhelpers.authoring import handles
from mrhelpers.authoring.handles import FAILED, SUCCEEDED, RunHandle
from mrhelpers.core.errors import RunFailed
from mrhelpers.core.progress import Progress
from mrhelpers.core.settings import TOKEN_ENV, Settings


def _run_here(component: Any, arguments: dict[str, Any], settings: Settings, name: str) -> RunHandle:
    """Compile ``component`` (a pipeline or a component) and run it with kfp.local in a child process."""
    from kfp import compiler
    from kfp.local import config

    mine = config.LocalExecutionConfig.instance  # the reader's own kfp.local.init, if any: its root and runner
    root = Path(mine.pipeline_root if mine else settings.pipeline_root)
    root.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in root.iterdir()}
    log = root / f".{name}-{time.time_ns()}.log"
    with tempfile.TemporaryDirectory() as tmp:
        compiler.Compiler().compile(component, f"{tmp}/package.yaml")
        job = {"package": f"{tmp}/package.yaml", "arguments": arguments, "root": str(root), "result": f"{tmp}/out"}
        job["use_venv"] = bool(getattr(getattr(mine, "runner", None), "use_venv", False))
        env = {**os.environ, TOKEN_ENV: settings.token.reveal()} if settings.token else dict(os.environ)
        start = time.monotonic()
        with open(log, "w") as out:
            code = "from mrhelpers.backends.local.runs import run_in_child; run_in_child()"
            subprocess.run([sys.executable, "-c", code], input=json.dumps(job, default=str), text=True, env=env,
                           stdout=out, stderr=subprocess.STDOUT, check=False)  # fmt: skip
        seconds = time.monotonic() - start
        result = json.loads(Path(job["result"]).read_text()) if Path(job["result"]).exists() else {}
    runs = sorted(p for p in root.iterdir() if p.is_dir() and p.name not in before and p.name.startswith(name))
    run_dir = runs[-1] if runs else None
    if run_dir:
        log = log.replace(run_dir / handles.LOG_NAME)
    tasks = handles.task_lines(log)
    error = result.get("error", None if result else "the kfp.local process ended without a result")
    outputs = result.get("outputs") or {}
    return RunHandle("local", name, FAILED if error else SUCCEEDED, outputs, outputs.get("run_id"),
                     outputs.get("run_name") or (run_dir.name if run_dir else None),
                     run_dir.resolve().as_uri() if run_dir else None, seconds, error, tasks, str(log))  # fmt: skip


def run_in_child() -> None:
    """The child's side: run the package stdin names with kfp.local; write outputs or the error as JSON."""
    from kfp import components, local

    job = json.loads(sys.stdin.read())
    local.init(runner=local.SubprocessRunner(use_venv=job["use_venv"]), pipeline_root=job["root"])
    result: dict[str, Any] = {"error": None}
    try:
        task = components.load_component_from_file(job["package"])(**job["arguments"])
        result["outputs"] = {k: handles.plain(v) for k, v in (task.outputs or {}).items()}
    except RuntimeError as exc:
        result["error"] = handles.ANSI.sub("", str(exc))
    Path(job["result"]).write_text(json.dumps(result, default=str))


def run_component_local(component: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """kfp.local runs ``component`` on this machine, in this environment; its outputs by name."""
    run = _run_here(component, arguments, settings, component.component_spec.name.replace("_", "-"))
    handles.print_tasks(run.tasks, run.log, failed=run.error is not None)
    if run.error is not None:
        raise RunFailed(f"{run.error} The log's tail is above; the whole log: {run.log}.")
    return run.outputs


def submit_local(pipeline: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> RunHandle:
    """kfp.local runs ``pipeline`` on this machine; the run has ended when this returns."""
    name = pipeline.pipeline_spec.pipeline_info.name
    with Progress(f"Running pipeline {name!r} with kfp.local") as progress:
        handle = _run_here(pipeline, arguments, settings, name)
        progress.done(handle.state)
    handles.print_tasks(handle.tasks, handle.log, failed=handle.error is not None)
    handles.remember(settings, handle, arguments)
    return handle
