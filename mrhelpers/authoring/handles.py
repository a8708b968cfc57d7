"""Pipeline runs (``mh.runs``): :func:`submit` and :func:`run_component` on the backend ``settings`` choose, the
:class:`RunHandle`, the run history (``<state dir>/runs/history.jsonl``) and the task lines of a kfp.local log."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Callable
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
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
TERMINAL_STATES = ("SUCCEEDED", "SKIPPED", "FAILED", "CANCELED")


@dataclasses.dataclass
class RunHandle:
    """A submitted pipeline run. ``state``: a local run has ended (``SUCCEEDED``/``FAILED``); a cluster run has
    KFP's state until :meth:`wait` follows it (``follow``, set by the backend). ``url``: the local run folder or
    the KFP UI page. Local runs also have ``tasks`` (``{"task", "state", "seconds"}``) and ``log``."""

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

    def wait(self, timeout: float = 3600, progress: bool = True) -> RunHandle:
        """Wait until the run ends (a cluster run: at most ``timeout`` seconds); :class:`RunFailed` unless it
        succeeded."""
        if self.follow is not None and self.state not in TERMINAL_STATES:
            self.follow(timeout, progress)
        if self.state == SUCCEEDED:
            return self
        where = f" The task log's tail is above; the whole log: {self.log}." if self.log else ""
        where = where or (f" The run in the KFP UI, with each task's log: {self.url}." if self.url else "")
        raise RunFailed(f"Pipeline {self.pipeline!r} ended {self.state}: {self.error}.{where}")


def plain(value: Any) -> Any:
    """A task output as JSON: artifacts as ``{"uri", "metadata"}``."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "uri") and hasattr(value, "metadata"):
        return {"uri": value.uri, "metadata": dict(value.metadata)}
    return str(value)


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


def summarize(log: str | Path, failed: bool | None = None) -> list[dict[str, Any]]:
    """Print one line per task of a kfp.local log, and its last 15 lines if ``failed`` (default: a task failed);
    return the tasks."""
    tasks = task_lines(log)
    for t in tasks:
        took = f"{t['seconds']:.1f} s" if t["seconds"] is not None else "-"
        print(f"  {t['task']:<28} {t['state']:<10} {took}")
    if any(t["state"] != SUCCEEDED for t in tasks) if failed is None else failed:
        tail = ANSI.sub("", Path(log).read_text(errors="replace")).rstrip().splitlines()[-15:]
        print(f"--- last lines of {log} ---", *tail, sep="\n")
    return tasks


def submit(pipeline: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> RunHandle:
    """Run a ``@dsl.pipeline`` with ``arguments`` on the backend ``settings`` choose; ``.wait()`` on the
    :class:`RunHandle` raises if it failed. :class:`InvalidInput` for a non-pipeline or an unknown argument."""
    if not hasattr(pipeline, "pipeline_spec"):
        name = getattr(pipeline, "__name__", pipeline)
        raise InvalidInput("pipeline", name, "a function decorated with @dsl.pipeline")
    known = set(pipeline.component_spec.inputs or {})
    if unknown := sorted(set(arguments) - known):
        raise InvalidInput("pipeline argument", unknown[0], f"one of {', '.join(sorted(known))}")
    return settings.backend_impl().submit(pipeline, arguments, settings)


def run_component(component: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Run one ``@dsl.component`` on its own, as a quick check; its outputs by name (artifacts as
    ``{"uri", "metadata"}``), or :class:`RunFailed`. Local: kfp.local runs it here. Cluster: a one-task
    pipeline (token and namespace wired as in the real ones) whose outputs are read back from the registry."""
    return settings.backend_impl().run_component(component, arguments, settings)


def remember(settings: Settings, handle: RunHandle, arguments: dict[str, Any]) -> None:
    """Add the run to the history: a flat, JSON-serialisable line (no secrets)."""
    (settings.state_dir / "runs").mkdir(parents=True, exist_ok=True)
    entry = {k: getattr(handle, k) for k in ("backend", "pipeline", "state", "run_id", "run_name", "url")}
    entry.update({f"output.{k}": v for k, v in handle.outputs.items()}, seconds=round(handle.seconds, 2))
    entry.update(arguments=arguments, finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
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
    None if it holds no such run."""
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
