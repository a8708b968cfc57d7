"""Notebook 04: submit a pipeline and follow the run.

Local backend: kfp.local with ``SubprocessRunner(use_venv=False)``; the run is
finished when :func:`submit` returns. The registry token is put into the
environment the tasks inherit (``MODEL_REGISTRY_TOKEN``) for the duration of
the run only, since kfp.local ignores ``use_secret_as_env``.

Cluster backend: :func:`mrhelpers.cluster.submit` uploads the pipeline to the KFP API
server and starts the run; ``wait()`` follows it and reads its outputs back from the
registry. The task gets its token from the Secret through ``use_secret_as_env``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mrhelpers.errors import InvalidInput, MRHelpersError, RunFailed
from mrhelpers.settings import TOKEN_ENV, Settings

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TASK_START = re.compile(r"^(\d\d):(\d\d):(\d\d\.\d+) - \w+ - Executing task '([^']+)'")
_TASK_END = re.compile(r"^(\d\d):(\d\d):(\d\d\.\d+) - \w+ - Task '([^']+)' finished with status (\w+)")
LOG_NAME = "kfp-local.log"
"""The file in a local run's folder that holds what kfp.local printed (executor inputs, task output)."""
TAIL_LINES = 15
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
TERMINAL_STATES = ("SUCCEEDED", "SKIPPED", "FAILED", "CANCELED")
"""KFP run states after which nothing changes."""


@dataclasses.dataclass
class RunHandle:
    """A submitted pipeline run.

    Attributes:
        backend: ``local`` or ``cluster``.
        pipeline: The pipeline's name.
        state: ``SUCCEEDED`` or ``FAILED`` (local runs are finished on return); on a cluster
            the run's state as KFP reports it (``PENDING``, ``RUNNING``, ...) until it ends.
        outputs: The pipeline's outputs by name (empty when it failed).
        run_id: The run id the tasks saw (``dsl.PIPELINE_JOB_ID_PLACEHOLDER``).
        run_name: The run name the tasks saw (``dsl.PIPELINE_JOB_NAME_PLACEHOLDER``).
        url: Where to look at the run: the local run folder as a ``file://`` URL, or the run's
            page in the KFP UI on a cluster.
        seconds: Wall time of the run.
        error: Why it failed, if it did.
        tasks: Local runs: one ``{"task", "state", "seconds"}`` per task that ran, from the log.
        log: Local runs: the file holding everything kfp.local printed for the run.
    """

    backend: str
    pipeline: str
    state: str
    outputs: dict[str, Any]
    run_id: str | None
    run_name: str | None
    url: str | None
    seconds: float
    error: str | None = None
    tasks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    log: str | None = None
    _follow: Callable[[float, bool], None] | None = dataclasses.field(default=None, repr=False, compare=False)

    def wait(self, timeout: float = 3600, progress: bool = True) -> RunHandle:
        """Wait until the run ends; raise :class:`RunFailed` when it did not succeed.

        Args:
            timeout: Seconds to wait at most (default 3600). Local runs have ended already;
                a cluster run is polled, with one progress line, until it ends.
            progress: Show progress while waiting (default True).
        """
        if self._follow is not None and self.state not in TERMINAL_STATES:
            self._follow(timeout, progress)
        if self.state != SUCCEEDED:
            if self.backend == "cluster":
                where = f" The run in the KFP UI, with each task's log: {self.url}."
            else:
                where = f" The task log's tail is above; the whole log: {self.log}." if self.log else ""
            raise RunFailed(f"Pipeline {self.pipeline!r} ended {self.state}: {self.error}.{where}")
        return self

    def summary(self) -> dict[str, Any]:
        """The run as a flat, JSON-serialisable dict (no secrets)."""
        return {
            "backend": self.backend,
            "pipeline": self.pipeline,
            "state": self.state,
            "run_id": self.run_id,
            "run_name": self.run_name,
            "url": self.url,
            "seconds": round(self.seconds, 2),
            **{f"output.{k}": v for k, v in self.outputs.items()},
        }


@contextlib.contextmanager
def _token_in_env(settings: Settings) -> Iterator[None]:
    old = os.environ.get(TOKEN_ENV)
    if settings.token:
        os.environ[TOKEN_ENV] = settings.token.reveal()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(TOKEN_ENV, None)
        else:
            os.environ[TOKEN_ENV] = old


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "uri") and hasattr(value, "metadata"):
        return {"uri": value.uri, "metadata": dict(value.metadata)}
    return str(value)


@contextlib.contextmanager
def kfp_local_log(path: str | Path) -> Iterator[Path]:
    """Send what kfp.local prints (every task's executor input, its output, its log) to ``path``.

    kfp.local writes all of it to ``sys.stdout``; this swaps ``sys.stdout`` for the file while the
    block runs. Read the result with :func:`task_lines` and :func:`log_tail`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh, contextlib.redirect_stdout(fh):
        yield path


def _seconds(match: re.Match[str]) -> float:
    return int(match.group(1)) * 3600 + int(match.group(2)) * 60 + float(match.group(3))


def task_lines(log: str | Path) -> list[dict[str, Any]]:
    """One ``{"task", "state", "seconds"}`` per task in a kfp.local log, in the order they ran.

    A task that started but never reported an end is ``FAILED`` (kfp.local raises instead of logging it).
    """
    rows: dict[str, dict[str, Any]] = {}
    started: dict[str, float] = {}
    for raw in Path(log).read_text(errors="replace").splitlines():
        line = _ANSI.sub("", raw)
        if m := _TASK_START.match(line):
            started[m.group(4)] = _seconds(m)
            rows[m.group(4)] = {"task": m.group(4), "state": FAILED, "seconds": None}
        elif (m := _TASK_END.match(line)) and m.group(4) in rows:
            state = {"SUCCESS": SUCCEEDED, "FAILURE": FAILED}.get(m.group(5), m.group(5))
            rows[m.group(4)].update(state=state, seconds=round((_seconds(m) - started[m.group(4)]) % 86400, 2))
    return list(rows.values())


def log_tail(log: str | Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a kfp.local log, without colour codes."""
    text = _ANSI.sub("", Path(log).read_text(errors="replace")).rstrip().splitlines()
    return "\n".join(text[-lines:])


def print_tasks(tasks: list[dict[str, Any]], log: str | Path | None, failed: bool) -> None:
    """One line per task; on failure, the tail of the log and where the whole log is."""
    for t in tasks:
        took = f"{t['seconds']:.1f} s" if t["seconds"] is not None else "-"
        print(f"  {t['task']:<28} {t['state']:<10} {took}")
    if failed and log is not None:
        print(f"--- last lines of {log} ---\n{log_tail(log)}")


def summarize(log: str | Path) -> list[dict[str, Any]]:
    """Print one line per task of a kfp.local log (and its tail when a task failed); return the tasks."""
    tasks = task_lines(log)
    print_tasks(tasks, log, failed=any(t["state"] != SUCCEEDED for t in tasks))
    return tasks


def submit(pipeline: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> RunHandle:
    """Run ``pipeline`` with ``arguments`` on the backend ``settings`` choose.

    Args:
        pipeline: A ``@dsl.pipeline`` function.
        arguments: Its parameters by name.
        settings: ``backend``, ``pipeline_root`` and the token.

    Returns:
        A :class:`RunHandle`; call ``.wait()`` to raise if it failed.

    Raises:
        InvalidInput: ``pipeline`` is not a pipeline, or an argument is unknown.
    """
    if not hasattr(pipeline, "pipeline_spec"):
        raise InvalidInput(
            "pipeline", getattr(pipeline, "__name__", pipeline), "a function decorated with @dsl.pipeline"
        )
    known = set(pipeline.component_spec.inputs or {})
    unknown = set(arguments) - known
    if unknown:
        raise InvalidInput("pipeline argument", sorted(unknown)[0], f"one of {', '.join(sorted(known))}")
    if settings.backend == "cluster":
        from mrhelpers import cluster

        return cluster.submit(pipeline, arguments, settings)
    return _submit_local(pipeline, arguments, settings)


def run_component(component: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Run one ``@dsl.component`` on its own, as a quick check.

    Local: kfp.local runs the task here. Cluster: the task becomes a one-task pipeline (with the
    token from the Secret and its namespace, like the real pipelines) run on the KFP API server;
    its outputs are read back from the registry, so this fits components that register.

    Returns:
        The task's outputs by name (artifacts as ``{"uri", "metadata"}``).

    Raises:
        RunFailed: When the task fails (its log is printed above, or in the KFP UI).
    """
    from kfp import local

    if settings.backend == "cluster":
        return _run_component_on_cluster(component, arguments, settings)
    root = Path(settings.pipeline_root)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    log = root / f".{component.component_spec.name}-{time.time_ns()}.log"
    error = None
    with _token_in_env(settings), kfp_local_log(log):
        try:
            task = component(**arguments)
        except RuntimeError as exc:
            error = _ANSI.sub("", str(exc))
    log = _into_run_dir(log, root, component.component_spec.name.replace("_", "-"))
    print_tasks(task_lines(log), log, failed=error is not None)
    if error is not None:
        raise RunFailed(f"{error} The log's tail is above; the whole log: {log}.")
    return {k: _plain(v) for k, v in (task.outputs or {}).items()}


def _into_run_dir(log: Path, root: Path, prefix: str) -> Path:
    """Move a run's log into the newest run folder whose name starts with ``prefix`` (kfp.local made it)."""
    runs = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(prefix)]
    if not runs:
        return log
    target = max(runs, key=lambda p: p.stat().st_mtime) / LOG_NAME
    log.replace(target)
    return target


def _run_component_on_cluster(
    component: Callable[..., Any], arguments: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    from kfp import dsl

    from mrhelpers import cluster
    from mrhelpers.pipelines import _with_token

    @dsl.pipeline(name=f"{component.component_spec.name}-check")
    def one_task():  # no annotation: KFP would read the string "None"
        _with_token(component(**arguments))

    outputs = dict(cluster.submit(one_task, {}, settings).wait().outputs)
    if "model" in outputs:
        outputs["output_model"] = outputs.pop("model")
    return outputs


def _submit_local(pipeline: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> RunHandle:
    from kfp import local

    root = Path(settings.pipeline_root)
    root.mkdir(parents=True, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    name = pipeline.pipeline_spec.pipeline_info.name
    before = {p.name for p in root.iterdir()}
    start = time.monotonic()
    state, error, outputs = SUCCEEDED, None, {}
    from mrhelpers.progress import Progress

    log = root / f".{name}-{time.time_ns()}.log"
    with _token_in_env(settings), Progress(f"Running pipeline {name!r} with kfp.local") as progress:
        with kfp_local_log(log):
            try:
                task = pipeline(**arguments)
                outputs = {k: _plain(v) for k, v in (task.outputs or {}).items()}
            except RuntimeError as exc:
                state, error = FAILED, _ANSI.sub("", str(exc))
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
    _remember(settings, handle, arguments)
    return handle


def _remember(settings: Settings, handle: RunHandle, arguments: dict[str, Any]) -> None:
    folder = settings.state_dir / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    entry = {
        **handle.summary(),
        "arguments": arguments,
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    with open(folder / "history.jsonl", "a") as fh:
        fh.write(json.dumps(entry, default=str) + "\n")


def run_history(settings: Settings) -> list[dict[str, Any]]:
    """Every run :func:`submit` made with these settings, oldest first."""
    try:
        lines = (settings.state_dir / "runs" / "history.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def last_run(settings: Settings, *, succeeded: bool = True) -> dict[str, Any]:
    """The most recent run (by default the most recent successful one).

    Raises:
        MRHelpersError: When there is none yet (run notebook 04 first).
    """
    for entry in reversed(run_history(settings)):
        if not succeeded or entry["state"] == SUCCEEDED:
            return entry
    raise MRHelpersError(
        f"No {'successful ' if succeeded else ''}pipeline run is recorded in {settings.state_dir / 'runs'}. "
        "Run notebook 04_submit_run first (or pass run_id explicitly)."
    )
