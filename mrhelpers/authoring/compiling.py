"""Compile a pipeline to YAML, and say what is inside and what would break its lineage."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from mrhelpers.core.errors import LineageWarning
from mrhelpers.core.settings import DEFAULT_COMPONENT_IMAGE, Settings

PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}")
"""Any ``{{...}}``. kfp's own are ``{{$...}}``; Argo's ``{{workflow.*}}``/``{{pod.*}}`` KFP v2 leaves as text."""
CRASH_LOCAL = ("{{$.pipeline_job_resource_name}}", "{{$.pipeline_job_create_time_utc}}")
CRASH_LOCAL += ("{{$.pipeline_job_schedule_time_utc}}",)
"""Placeholders that crash kfp.local (IndexError)."""
NOT_SUBSTITUTED = (
    "KFP v2 does not substitute it (Argo's {{workflow.*}}/{{pod.*}} are not KFP's): the task gets the text itself; "
    "use dsl.PIPELINE_JOB_ID_PLACEHOLDER / dsl.PIPELINE_JOB_NAME_PLACEHOLDER, or POD_NAMESPACE from "
    "kubernetes.use_field_path_as_env for the namespace"
)
LINEAGE = {
    "run_id": ("{{$.pipeline_job_uuid}}", "dsl.PIPELINE_JOB_ID_PLACEHOLDER (run id)"),
    "run_name": ("{{$.pipeline_job_name}}", "dsl.PIPELINE_JOB_NAME_PLACEHOLDER (run name)"),
}
"""The registering component's lineage inputs: the placeholder that must feed each, and what it means."""
KFP_ENV = re.compile(r"\bKFP_[A-Z0-9_]+\b")
KFP_SET_ENV = {"KFP_POD_NAME", "KFP_POD_UID"}
"""The only ``KFP_*`` environment variables KFP puts into a task's pod."""
ENV_INSTEAD = {
    "KFP_RUN_ID": "an input fed by dsl.PIPELINE_JOB_ID_PLACEHOLDER",
    "KFP_RUN_NAME": "an input fed by dsl.PIPELINE_JOB_NAME_PLACEHOLDER",
    "KFP_PIPELINE_NAME": "an input fed by dsl.PIPELINE_JOB_NAME_PLACEHOLDER (the run name)",
    "KFP_POD_NAMESPACE": "POD_NAMESPACE from kubernetes.use_field_path_as_env(task, 'POD_NAMESPACE', "
    "'metadata.namespace')",
}


def compile_pipeline(func: Callable[..., Any], path: str | Path, settings: Settings | None = None) -> Path:
    """Compile a ``@dsl.pipeline`` to a YAML package at ``path`` (folders made, a file replaced); return the path.

    The packaged components run in ``settings.component_image`` (default: ``Settings.from_env()``). Each
    problem :func:`describe_package` lists under ``warnings`` is emitted as a :class:`LineageWarning`.
    """
    from kfp import compiler

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(func, str(path))
    image = (settings or Settings.from_env()).component_image
    if image != DEFAULT_COMPONENT_IMAGE:
        path.write_text(path.read_text().replace(f"image: {DEFAULT_COMPONENT_IMAGE}\n", f"image: {image}\n"))
    for problem in describe_package(path)["warnings"]:
        warnings.warn(problem, LineageWarning, stacklevel=2)
    return path


def _placeholder_problems(text: Any, known: set[str]) -> list[str]:
    """What is wrong with the ``{{...}}`` in ``text``: no such placeholder, not substituted, or crashes kfp.local."""
    found = PLACEHOLDER.findall(text) if isinstance(text, str) else []
    problems = [f"{p}: crashes kfp.local (IndexError)" for p in found if p in CRASH_LOCAL]
    unknown = [p for p in found if p not in known]
    return problems + [f"{p}: {'no such placeholder in KFP' if p[2] == '$' else NOT_SUBSTITUTED}" for p in unknown]


def describe_package(path: str | Path) -> dict[str, Any]:
    """Summarise a compiled pipeline package.

    Returns a dict: ``name``; ``inputs`` (name, type, default); ``tasks`` (task, component, image);
    ``secrets_as_env`` (task, secret, key, env); ``field_path_env`` (task, env, field_path); ``task_env``
    (task, env, from: both as one table); ``lineage_placeholders`` (task, input, placeholder, meaning); and
    ``warnings``: placeholders that do not exist, crash kfp.local or that KFP v2 never substitutes,
    ``run_id``/``run_name`` inputs not fed by the run's placeholders, and component code reading a ``KFP_*``
    variable KFP never sets.
    """
    from kfp import dsl

    known = {v for k, v in vars(dsl).items() if k.endswith("_PLACEHOLDER")}
    spec, *rest = yaml.safe_load_all(Path(path).read_text())
    params = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    inputs = [{"name": n, "type": p.get("parameterType"), "default": p.get("defaultValue")} for n, p in params.items()]
    problems = [
        f"pipeline input {n!r} defaults to {w}"
        for n, p in params.items()
        for w in _placeholder_problems(p.get("defaultValue"), known)
    ]
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    tasks, placeholders = [], []
    dags = [spec["root"].get("dag", {}), *(c.get("dag", {}) for c in spec.get("components", {}).values())]
    for name, task in [(name, task) for dag in dags for name, task in dag.get("tasks", {}).items()]:
        component = spec["components"][task["componentRef"]["name"]]
        if not component.get("executorLabel"):
            continue  # a nested DAG (dsl.If, dsl.ParallelFor): its tasks are in the list too
        container = executors.get(component.get("executorLabel"), {}).get("container", {})
        tasks.append({"task": name, "component": task["componentRef"]["name"], "image": container.get("image")})
        given = {
            k: v.get("runtimeValue", {}).get("constant")
            for k, v in task.get("inputs", {}).get("parameters", {}).items()
        }
        declared = component.get("inputDefinitions", {}).get("parameters", {})
        for arg, (placeholder, meaning) in LINEAGE.items():
            if arg in declared and given.get(arg) != placeholder:
                wrong = f"is not fed by {placeholder} ({meaning}): the lineage would not name the run"
                problems.append(f"task {name!r} input {arg!r} {wrong}")
        for arg, value in given.items():
            problems += [f"task {name!r} input {arg!r} uses {w}" for w in _placeholder_problems(value, known)]
            placeholders += [
                {"task": name, "input": arg, "placeholder": p, "meaning": m}
                for p, m in LINEAGE.values()
                if isinstance(value, str) and p in value
            ]
        code = "\n".join([*container.get("command", []), *container.get("args", [])])
        for env in sorted(set(KFP_ENV.findall(code)) - KFP_SET_ENV):
            instead = ENV_INSTEAD.get(env, "an input fed by one of kfp.dsl's *_PLACEHOLDER constants")
            never = f"which KFP never sets (it sets only {' and '.join(sorted(KFP_SET_ENV))})"
            missing = f"{never}: the value would be missing; use {instead}"
            problems.append(f"task {name!r} reads the environment variable {env}, {missing}")
    secrets, fields = [], []
    platform = (rest[0] if rest and rest[0] else {}).get("platforms", {}).get("kubernetes", {})
    by_executor = {spec["components"][t["component"]].get("executorLabel"): t["task"] for t in tasks}
    for executor, config in platform.get("deploymentSpec", {}).get("executors", {}).items():
        task = by_executor.get(executor, executor)
        for s in config.get("secretAsEnv", []):
            secret = s.get("secretName") or s.get("secretNameParameter", {}).get("runtimeValue", {}).get("constant")
            secrets += [
                {"task": task, "secret": secret, "key": kv["secretKey"], "env": kv["envVar"]}
                for kv in s.get("keyToEnv", [])
            ]
        fields += [
            {"task": task, "env": f["name"], "field_path": f["fieldPath"]} for f in config.get("fieldPathAsEnv", [])
        ]
    task_env = [{"task": x["task"], "env": x["env"], "from": f"Secret {x['secret']}, key {x['key']}"} for x in secrets]
    task_env += [{"task": x["task"], "env": x["env"], "from": f"the pod's {x['field_path']}"} for x in fields]
    return {
        "name": spec.get("pipelineInfo", {}).get("name"),
        "inputs": inputs,
        "tasks": tasks,
        "secrets_as_env": secrets,
        "field_path_env": fields,
        "task_env": task_env,
        "lineage_placeholders": placeholders,
        "warnings": problems,
    }
