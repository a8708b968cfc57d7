"""Pipelines on the KFP API server: upload once per content, run, follow, read back what the run registered."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mrhelpers.authoring.compiling import compile_pipeline
from mrhelpers.authoring.handles import TERMINAL_STATES, RunHandle, remember
from mrhelpers.backends.cluster.clients import kfp_call, kfp_client
from mrhelpers.core.errors import RunFailed
from mrhelpers.core.inspection import find_versions
from mrhelpers.core.progress import Progress
from mrhelpers.core.registry import connect
from mrhelpers.core.rest import session_for
from mrhelpers.core.settings import Settings


def _pipeline_version(client: Any, settings: Settings, pipeline: Any) -> tuple[str, str]:
    """Upload the pipeline, and its compiled YAML as a version named after its hash, unless there; both ids."""
    name = pipeline.pipeline_spec.pipeline_info.name
    path = str(compile_pipeline(pipeline, settings.state_dir / "packages" / f"{name}.yaml"))
    version_name = f"{name}-{hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]}"  # DNS-1123 safe
    pipeline_id = kfp_call("looking up the pipeline", settings, client.get_pipeline_id, name)
    if pipeline_id is None:
        pipeline_id = kfp_call("uploading the pipeline", settings, client.upload_pipeline, path, name).pipeline_id
    wanted = json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": version_name}]})
    found = kfp_call("listing pipeline versions", settings, client.list_pipeline_versions, pipeline_id, filter=wanted)
    for version in found.pipeline_versions or []:
        if version.display_name == version_name:
            return pipeline_id, version.pipeline_version_id
    upload = client.upload_pipeline_version
    return pipeline_id, kfp_call("uploading the pipeline version", settings, upload, path, version_name,
                                 pipeline_id=pipeline_id).pipeline_version_id  # fmt: skip


def submit(pipeline: Any, arguments: dict[str, Any], settings: Settings) -> RunHandle:
    """Run ``pipeline`` in the ``mrhelpers`` experiment; the handle's ``wait()`` follows it."""
    client = kfp_client(settings)
    name = pipeline.pipeline_spec.pipeline_info.name
    pipeline_id, version_id = _pipeline_version(client, settings, pipeline)
    experiment = kfp_call("creating the experiment", settings, client.create_experiment, "mrhelpers")
    display = f"{name} {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S}"
    run = kfp_call("creating the run", settings, client.run_pipeline, experiment.experiment_id, display,
                   params=arguments, pipeline_id=pipeline_id, version_id=version_id)  # fmt: skip
    url = settings.backend_impl().run_link(settings, run.run_id)
    handle = RunHandle(backend="cluster", pipeline=name, state=str(run.state or "PENDING"), outputs={},
                       run_id=run.run_id, run_name=display, url=url, seconds=0.0)  # fmt: skip
    handle.follow = lambda timeout, progress: _follow(client, settings, handle, arguments, timeout, progress)
    return handle


def run_component(component: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """``component`` as a one-task pipeline with the token; its outputs are what it registered."""
    from kfp import dsl

    from mrhelpers.authoring.pipelines import with_token

    @dsl.pipeline(name=f"{component.component_spec.name}-check")
    def one_task():  # no annotation: KFP would read the string "None"
        with_token(component(**arguments))

    outputs = dict(submit(one_task, {}, settings).wait().outputs)
    if "model" in outputs:
        outputs["output_model"] = outputs.pop("model")
    return outputs


def _follow(client: Any, settings: Settings, handle: Any, arguments: dict[str, Any], timeout: float,
            show: bool) -> None:  # fmt: skip
    """Poll the run every ``settings.poll_seconds`` until it ends or ``timeout`` passes; fill the handle."""
    start, last = time.monotonic(), None
    with Progress(f"Run {handle.run_name!r} on {settings.kfp_host}", quiet=not show) as progress:
        while True:
            run = kfp_call("reading the run", settings, client.get_run, handle.run_id)
            state = handle.state = str(run.state or "PENDING")
            handle.seconds = time.monotonic() - start
            tasks = list(getattr(getattr(run, "run_details", None), "task_details", None) or [])
            done = sum(1 for t in tasks if str(t.state) in TERMINAL_STATES)
            say = progress.milestone if (state, done) != last else progress.update  # CI logs get the changes
            say(f"{state}, {done} of {len(tasks)} tasks finished")
            last = (state, done)
            if state in TERMINAL_STATES:
                break
            if handle.seconds > timeout:
                progress.done(f"still {state}")
                raise RunFailed(f"Run {handle.run_id} is still {state} after {timeout:.0f} s. Follow it at "
                                f"{handle.url}; call .wait() again to keep waiting.")  # fmt: skip
            time.sleep(settings.poll_seconds)
        progress.done(state)
    if state != "SUCCEEDED":
        failed = [f"{t.display_name}: {t.error.message if t.error else t.state}" for t in tasks
                  if str(t.state) == "FAILED"]  # fmt: skip
        handle.error = "; ".join(failed) or (run.error.message if getattr(run, "error", None) else "no error message")
    else:
        handle.outputs = outputs_from_registry(settings, handle.run_id)
        handle.run_name = handle.outputs.get("run_name") or handle.run_name
    remember(settings, handle, arguments)


def outputs_from_registry(settings: Settings, run_id: str) -> dict[str, Any]:
    """What run ``run_id`` registered, shaped as a local run's outputs (for several versions, ``versions``)."""
    registry = connect(settings)
    found = find_versions(registry, run_id=run_id, settings=settings)
    out: dict[str, Any] = {"run_id": run_id}
    if found.empty:
        return out
    out["run_name"] = found.iloc[-1]["source_name"]
    if len(found) > 1:
        out["versions"] = found[["model", "version", "version_id"]].to_dict("records")
        return out
    row, session = found.iloc[0], session_for(registry)
    model, artifact = session.find_model(row["model"]), session.model_artifact(row["version_id"])
    uri = artifact.uri if artifact else None  # exact: the frame's ``uri`` column is masked for display
    metadata = {"model_name": row["model"], "version_name": row["version"], "registered_model_id": model.id,
                "model_version_id": row["version_id"], "model_artifact_id": artifact.id if artifact else None,
                "model_uri": uri, "registry_url": settings.component_registry_url}  # fmt: skip
    out.update(model_id=model.id, version_id=row["version_id"], version_name=row["version"], created=True,
               model={"uri": uri, "metadata": metadata})  # fmt: skip
    return out
