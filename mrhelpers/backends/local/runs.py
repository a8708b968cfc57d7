"""Local runs: kfp.local in a child process whose environment holds the token and whose output is the run's log;
this process's ``os.environ``, ``sys.stdout`` and kfp.local set-up stay as they are (docs/settings.md)."""

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

CHILD = "from mrhelpers.backends.local.runs import run_in_child; run_in_child()"


def _run_here(component: Any, arguments: dict[str, Any], settings: Settings, name: str) -> RunHandle:
    """Compile ``component`` (a pipeline or a component) and run it with kfp.local in a child process."""
    from kfp import compiler
    from kfp.local import config

    mine = config.LocalExecutionConfig.instance  # the reader's own kfp.local.init, if any: its root and runner
    root = Path(mine.pipeline_root if mine else settings.pipeline_root)
    root.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in root.iterdir()}
    log = root / f".{name}-{time.time_ns()}.log"
    env = {**os.environ, TOKEN_ENV: settings.token.reveal()} if settings.token else dict(os.environ)
    use_venv = bool(getattr(getattr(mine, "runner", None), "use_venv", False))
    with tempfile.TemporaryDirectory() as tmp, open(log, "w") as out:
        compiler.Compiler().compile(component, f"{tmp}/package.yaml")
        job = {"package": f"{tmp}/package.yaml", "arguments": arguments, "root": str(root), "use_venv": use_venv}
        done = Path(job.setdefault("result", f"{tmp}/result.json"))
        start = time.monotonic()
        child = [sys.executable, "-c", CHILD]
        subprocess.run(child, input=json.dumps(job, default=str), text=True, env=env, stdout=out, stderr=out)
        seconds = time.monotonic() - start
        result = json.loads(done.read_text()) if done.exists() else {"error": "kfp.local ended without a result"}
    new = [p for p in root.iterdir() if p.is_dir() and p.name not in before and p.name.startswith(name)]
    run_dir = max(new, default=None)
    if run_dir:
        log = log.replace(run_dir / handles.LOG_NAME)
    outputs, error = result.get("outputs") or {}, result["error"]
    run_name = outputs.get("run_name") or (run_dir.name if run_dir else None)
    url = run_dir.resolve().as_uri() if run_dir else None
    state = FAILED if error else SUCCEEDED
    tasks = handles.task_lines(log)
    return RunHandle(
        "local", name, state, outputs, outputs.get("run_id"), run_name, url, seconds, error, tasks, str(log)
    )


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
    handles.summarize(run.log, failed=run.error is not None)
    if run.error is not None:
        raise RunFailed(f"{run.error} The log's tail is above; the whole log: {run.log}.")
    return run.outputs


def submit_local(pipeline: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> RunHandle:
    """kfp.local runs ``pipeline`` on this machine; the run has ended when this returns."""
    name = pipeline.pipeline_spec.pipeline_info.name
    with Progress(f"Running pipeline {name!r} with kfp.local") as progress:
        handle = _run_here(pipeline, arguments, settings, name)
        progress.done(handle.state)
    handles.summarize(handle.log, failed=handle.error is not None)
    handles.remember(settings, handle, arguments)
    return handle
