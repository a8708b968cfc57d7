"""What a pipeline run leaves behind, whichever backend ran it: the :class:`RunHandle` ``submit`` returns,
the run history (``<state dir>/runs/history.jsonl``) and the reading of kfp.local logs."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mrhelpers.core.errors import InvalidInput, MRHelpersError, RunFailed
from mrhelpers.core.settings import Settings

ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TASK = re.compile(
    r"^(\d\d):(\d\d):(\d\d\.\d+) - \w+ - (?:Executing task '([^']+)'|Task '([^']+)' finished with status (\w+))"
)
LOG_NAME = "kfp-local.log"
"""The file in a local run's folder that holds what kfp.local printed (executor inputs, task output)."""
TAIL_LINES = 15
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
TERMINAL_STATES = ("SUCCEEDED", "SKIPPED", "FAILED", "CANCELED")
"""KFP run states after which nothing changes."""


@dataclasses.dataclass
class RunHandle:
    """A submitted pipeline run: ``state`` is ``SUCCEEDED`` or ``FAILED`` for a local run (ended on return), and
    KFP's state (``PENDING``, ``RUNNING``, ...) for a cluster run until it ends. ``run_id``/``run_name`` are
    what the tasks saw; ``url`` the local run folder or the run's KFP UI page; ``outputs`` are empty when it
    failed. Local runs also have ``tasks`` (``{"task", "state", "seconds"}`` each) and ``log`` (the tasks'
    output)."""

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
    follow: Callable[[float, bool], None] | None = dataclasses.field(default=None, repr=False, compare=False)
    """Cluster runs: polls the run until it ends (set by the backend that started it)."""

    def wait(self, timeout: float = 3600, progress: bool = True) -> RunHandle:
        """Wait until the run ends (a cluster run is polled for at most ``timeout`` seconds, with a progress
        line); raise :class:`RunFailed` when it did not succeed."""
        if self.follow is not None and self.state not in TERMINAL_STATES:
            self.follow(timeout, progress)
        if self.state == SUCCEEDED:
            return self
        where = f" The task log's tail is above; the whole log: {self.log}." if self.log else ""
        where = where or (f" The run in the KFP UI, with each task's log: {self.url}." if self.url else "")
        raise RunFailed(f"Pipeline {self.pipeline!r} ended {self.state}: {self.error}.{where}")

    def summary(self) -> dict[str, Any]:
        """The run as a flat, JSON-serialisable dict (no secrets), as the history keeps it."""
        keys = ("backend", "pipeline", "state", "run_id", "run_name", "url")
        return {**{k: getattr(self, k) for k in keys}, "seconds": round(self.seconds, 2),
                **{f"output.{k}": v for k, v in self.outputs.items()}}  # fmt: skip


def plain(value: Any) -> Any:
    """A task output as JSON: artifacts as ``{"uri", "metadata"}``."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "uri") and hasattr(value, "metadata"):
        return {"uri": value.uri, "metadata": dict(value.metadata)}
    return str(value)


@contextlib.contextmanager
def kfp_local_log(path: str | Path) -> Iterator[Path]:
    """For your own kfp.local calls in a ``with`` block: what kfp.local prints goes to ``path``.

    kfp.local prints to ``sys.stdout``, so this swaps ``sys.stdout`` for the file while *your* block
    runs; ``submit`` and ``run_component`` never do (their tasks write to the run's log themselves).
    Read the file with :func:`summarize`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh, contextlib.redirect_stdout(fh):
        yield path


def task_lines(log: str | Path) -> list[dict[str, Any]]:
    """One ``{"task", "state", "seconds"}`` per task in a kfp.local log, in the order they ran; a task that
    started but never reported an end is ``FAILED`` (kfp.local raised instead)."""
    rows: dict[str, dict[str, Any]] = {}
    for line in ANSI.sub("", Path(log).read_text(errors="replace")).splitlines():
        if m := _TASK.match(line):
            hours, minutes, seconds, started, ended, status = m.groups()
            at = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
            if started:
                rows[started] = {"task": started, "state": FAILED, "seconds": None, "at": at}
            elif ended in rows:
                state = {"SUCCESS": SUCCEEDED, "FAILURE": FAILED}.get(status, status)
                rows[ended].update(state=state, seconds=round((at - rows[ended]["at"]) % 86400, 2))
    return [{k: v for k, v in row.items() if k != "at"} for row in rows.values()]


def log_tail(log: str | Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a kfp.local log, without colour codes."""
    return "\n".join(ANSI.sub("", Path(log).read_text(errors="replace")).rstrip().splitlines()[-lines:])


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


def check_arguments(pipeline: Callable[..., Any], arguments: dict[str, Any]) -> None:
    """Raise :class:`InvalidInput` for what is not a ``@dsl.pipeline``, or an argument it does not take."""
    if not hasattr(pipeline, "pipeline_spec"):
        raise InvalidInput(
            "pipeline", getattr(pipeline, "__name__", pipeline), "a function decorated with @dsl.pipeline"
        )
    known = set(pipeline.component_spec.inputs or {})
    unknown = set(arguments) - known
    if unknown:
        raise InvalidInput("pipeline argument", sorted(unknown)[0], f"one of {', '.join(sorted(known))}")


def remember(settings: Settings, handle: RunHandle, arguments: dict[str, Any]) -> None:
    """Add the run to the history."""
    (settings.state_dir / "runs").mkdir(parents=True, exist_ok=True)
    entry = {
        **handle.summary(),
        "arguments": arguments,
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    with open(settings.state_dir / "runs" / "history.jsonl", "a") as fh:
        fh.write(json.dumps(entry, default=str) + "\n")


def run_history(settings: Settings) -> list[dict[str, Any]]:
    """Every run :func:`submit` made with these settings, oldest first."""
    try:
        lines = (settings.state_dir / "runs" / "history.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def run_started(settings: Settings, run_id: str, slack_s: float) -> int | None:
    """When run ``run_id`` started, in epoch ms less ``slack_s`` (for clocks that differ), from the history;
    None if it holds no such run. :func:`mrhelpers.find_versions` reads only the versions written since."""
    starts = [
        dt.datetime.fromisoformat(e["finished"]).timestamp() - float(e.get("seconds") or 0)
        for e in run_history(settings)
        if e.get("run_id") == run_id and e.get("finished")
    ]
    return int((min(starts) - slack_s) * 1000) if starts else None


def last_run(settings: Settings, *, succeeded: bool = True) -> dict[str, Any]:
    """The most recent (successful) run in the history; :class:`MRHelpersError` when there is none."""
    for entry in reversed(run_history(settings)):
        if not succeeded or entry["state"] == SUCCEEDED:
            return entry
    raise MRHelpersError(
        f"No {'successful ' if succeeded else ''}pipeline run is recorded in {settings.state_dir / 'runs'}. "
        "Run notebook 04_submit_run first (or pass run_id explicitly)."
    )
