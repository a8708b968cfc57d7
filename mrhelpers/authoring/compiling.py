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

# Placeholders that do not exist in KFP or crash kfp.local (see the design's verified facts).
BAD_PLACEHOLDERS = {
    "{{$.pipeline_job_resource_name}}": "crashes kfp.local (IndexError)",
    "{{$.pipeline_job_create_time_utc}}": "crashes kfp.local (IndexError)",
    "{{$.pipeline_job_schedule_time_utc}}": "crashes kfp.local (IndexError)",
}
PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}")
"""Any ``{{...}}``. kfp's own are ``{{$...}}``; Argo's ``{{workflow.*}}``/``{{pod.*}}`` KFP v2 leaves as text."""
KFP_SET_ENV = {"KFP_POD_NAME", "KFP_POD_UID"}
"""The only ``KFP_*`` environment variables KFP puts into a task's pod."""
KFP_ENV = re.compile(r"\bKFP_[A-Z0-9_]+\b")
ENV_INSTEAD = {
    "KFP_RUN_ID": "an input fed by dsl.PIPELINE_JOB_ID_PLACEHOLDER",
    "KFP_RUN_NAME": "an input fed by dsl.PIPELINE_JOB_NAME_PLACEHOLDER",
    "KFP_PIPELINE_NAME": "an input fed by dsl.PIPELINE_JOB_NAME_PLACEHOLDER (the run name)",
    "KFP_POD_NAMESPACE": "POD_NAMESPACE from kubernetes.use_field_path_as_env(task, 'POD_NAMESPACE', "
    "'metadata.namespace')",
}
LINEAGE_INPUTS = {"run_id": "{{$.pipeline_job_uuid}}", "run_name": "{{$.pipeline_job_name}}"}
"""Inputs of the registering component that must come from these placeholders."""
LINEAGE_PLACEHOLDERS = {
    "{{$.pipeline_job_uuid}}": "dsl.PIPELINE_JOB_ID_PLACEHOLDER (run id)",
    "{{$.pipeline_job_name}}": "dsl.PIPELINE_JOB_NAME_PLACEHOLDER (run name)",
}


def compile_pipeline(func: Callable[..., Any], path: str | Path, settings: Settings | None = None) -> Path:
    """Compile a ``@dsl.pipeline`` function to a YAML package at ``path`` (folders made, a file replaced).

    The packaged components run in ``settings.component_image`` (default settings: ``Settings.from_env()``).
    Each problem :func:`describe_package` lists under ``warnings`` is emitted as a
    :class:`mrhelpers.core.errors.LineageWarning`.

    Returns:
        The package's path.
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


def describe_package(path: str | Path, known_placeholders: set[str] | None = None) -> dict[str, Any]:
    """Summarise a compiled pipeline package.

    Args:
        path: The YAML package.
        known_placeholders: The ``{{$...}}`` placeholders that exist; default: kfp's own.

    Returns:
        A dict with ``name``, ``inputs`` (name, type, default), ``task_env`` (task,
        env, from: what each task's environment variables are filled from), ``tasks`` (task,
        component, image), ``secrets_as_env`` (task, secret, key, env),
        ``field_path_env`` (task, env, field path), ``lineage_placeholders`` (task,
        input, placeholder, meaning) and ``warnings``: placeholders that do not
        exist, crash the local runner, or that KFP v2 never substitutes (``{{workflow.*}}``,
        ``{{pod.*}}``; in task inputs or pipeline defaults), ``run_id``/``run_name`` inputs
        not fed by the run's placeholders (the lineage would not name the run), and component
        code that reads a ``KFP_*`` environment variable KFP never sets (``KFP_RUN_ID``, ...).
    """
    if known_placeholders is None:
        from kfp import dsl

        known_placeholders = {v for k, v in vars(dsl).items() if k.endswith("_PLACEHOLDER")}
    docs = list(yaml.safe_load_all(Path(path).read_text()))
    spec, platform = docs[0], (docs[1] if len(docs) > 1 and docs[1] else {})
    root = spec["root"]
    inputs = [
        {"name": name, "type": p.get("parameterType"), "default": p.get("defaultValue")}
        for name, p in root.get("inputDefinitions", {}).get("parameters", {}).items()
    ]
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    tasks, placeholders, warnings = [], [], []
    for name, p in root.get("inputDefinitions", {}).get("parameters", {}).items():
        default = p.get("defaultValue")
        for ph in PLACEHOLDER.findall(default) if isinstance(default, str) else []:
            if ph not in known_placeholders:
                warnings.append(f"pipeline input {name!r} defaults to {ph}: {_not_substituted(ph)}")
    for task_name, task in _all_tasks(spec):
        component = task["componentRef"]["name"]
        executor = spec["components"][component].get("executorLabel")
        image = executors.get(executor, {}).get("container", {}).get("image")
        tasks.append({"task": task_name, "component": component, "image": image})
        params = task.get("inputs", {}).get("parameters", {})
        component_inputs = spec["components"][component].get("inputDefinitions", {}).get("parameters", {})
        for input_name, expected in LINEAGE_INPUTS.items():
            if input_name in component_inputs:
                given = params.get(input_name, {}).get("runtimeValue", {}).get("constant")
                if given != expected:
                    warnings.append(
                        f"task {task_name!r} input {input_name!r} is not fed by {expected} "
                        f"({LINEAGE_PLACEHOLDERS[expected]}): the lineage would not name the run"
                    )
        for input_name, value in params.items():
            constant = value.get("runtimeValue", {}).get("constant")
            if not isinstance(constant, str):
                continue
            for ph in PLACEHOLDER.findall(constant):
                if ph not in known_placeholders:
                    warnings.append(f"task {task_name!r} input {input_name!r} uses {ph}: {_not_substituted(ph)}")
            for ph, meaning in LINEAGE_PLACEHOLDERS.items():
                if ph in constant:
                    placeholders.append({"task": task_name, "input": input_name, "placeholder": ph, "meaning": meaning})
            for ph, problem in BAD_PLACEHOLDERS.items():
                if ph in constant:
                    warnings.append(f"task {task_name!r} input {input_name!r} uses {ph}: {problem}")
    warnings += _unset_env_reads(spec, tasks)
    secrets, fields = [], []
    k8s = platform.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {}).get("executors", {})
    by_executor = {spec["components"][t["component"]].get("executorLabel"): t["task"] for t in tasks}
    for executor, config in k8s.items():
        task_name = by_executor.get(executor, executor)
        for s in config.get("secretAsEnv", []):
            name = s.get("secretName") or s.get("secretNameParameter", {}).get("runtimeValue", {}).get("constant")
            for kv in s.get("keyToEnv", []):
                secrets.append({"task": task_name, "secret": name, "key": kv["secretKey"], "env": kv["envVar"]})
        for f in config.get("fieldPathAsEnv", []):
            fields.append({"task": task_name, "env": f["name"], "field_path": f["fieldPath"]})
    task_env = [{"task": x["task"], "env": x["env"], "from": f"Secret {x['secret']}, key {x['key']}"} for x in secrets]
    task_env += [{"task": x["task"], "env": x["env"], "from": f"the pod's {x['field_path']}"} for x in fields]
    return {
        "name": spec.get("pipelineInfo", {}).get("name"),
        "task_env": task_env,
        "inputs": inputs,
        "tasks": tasks,
        "secrets_as_env": secrets,
        "field_path_env": fields,
        "lineage_placeholders": placeholders,
        "warnings": warnings,
    }


def _all_tasks(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every task of the root DAG and of nested DAGs (``dsl.If``, ``dsl.ParallelFor``) that runs a container."""
    found = []
    dags = [spec["root"].get("dag", {}), *(c.get("dag", {}) for c in spec.get("components", {}).values())]
    for dag in dags:
        for name, task in dag.get("tasks", {}).items():
            if spec["components"][task["componentRef"]["name"]].get("executorLabel"):
                found.append((name, task))
    return found


def _not_substituted(placeholder: str) -> str:
    if placeholder.startswith("{{$"):
        return "no such placeholder in KFP"
    return (
        "KFP v2 does not substitute it (Argo's {{workflow.*}}/{{pod.*}} are not KFP's): the task gets the text "
        "itself; use dsl.PIPELINE_JOB_ID_PLACEHOLDER / dsl.PIPELINE_JOB_NAME_PLACEHOLDER, or POD_NAMESPACE "
        "from kubernetes.use_field_path_as_env for the namespace"
    )


def _unset_env_reads(spec: dict[str, Any], tasks: list[dict[str, Any]]) -> list[str]:
    """Warnings for component code that reads a ``KFP_*`` variable KFP never sets."""
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    problems = []
    for t in tasks:
        executor = spec["components"][t["component"]].get("executorLabel")
        container = executors.get(executor, {}).get("container", {})
        code = "\n".join([*container.get("command", []), *container.get("args", [])])
        for env in sorted(set(KFP_ENV.findall(code)) - KFP_SET_ENV):
            instead = ENV_INSTEAD.get(env, "an input fed by one of kfp.dsl's *_PLACEHOLDER constants")
            problems.append(
                f"task {t['task']!r} reads the environment variable {env}, which KFP never sets (it sets only "
                f"{' and '.join(sorted(KFP_SET_ENV))}): the value would be missing; use {instead}"
            )
    return problems
