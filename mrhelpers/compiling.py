"""Notebook 03: compile a pipeline to YAML and say what is inside."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

# Placeholders that do not exist in KFP or crash kfp.local (see the design's verified facts).
BAD_PLACEHOLDERS = {
    "{{$.pipeline_job_resource_name}}": "crashes kfp.local (IndexError)",
    "{{$.pipeline_job_create_time_utc}}": "crashes kfp.local (IndexError)",
    "{{$.pipeline_job_schedule_time_utc}}": "crashes kfp.local (IndexError)",
}
LINEAGE_PLACEHOLDERS = {
    "{{$.pipeline_job_uuid}}": "dsl.PIPELINE_JOB_ID_PLACEHOLDER (run id)",
    "{{$.pipeline_job_name}}": "dsl.PIPELINE_JOB_NAME_PLACEHOLDER (run name)",
}


def compile_pipeline(func: Callable[..., Any], path: str | Path) -> Path:
    """Compile a ``@dsl.pipeline`` function to a YAML package at ``path``.

    Folders are created as needed; an existing file is replaced.

    Returns:
        The package's path.
    """
    from kfp import compiler

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(func, str(path))
    return path


def describe_package(path: str | Path) -> dict[str, Any]:
    """Summarise a compiled pipeline package.

    Returns:
        A dict with ``name``, ``inputs`` (name, type, default), ``tasks`` (task,
        component, image), ``secrets_as_env`` (task, secret, key, env),
        ``field_path_env`` (task, env, field path), ``lineage_placeholders`` (task,
        input, placeholder, meaning) and ``warnings`` (placeholders that do not
        exist or crash the local runner).
    """
    docs = list(yaml.safe_load_all(Path(path).read_text()))
    spec, platform = docs[0], (docs[1] if len(docs) > 1 and docs[1] else {})
    root = spec["root"]
    inputs = [
        {"name": name, "type": p.get("parameterType"), "default": p.get("defaultValue")}
        for name, p in root.get("inputDefinitions", {}).get("parameters", {}).items()
    ]
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    tasks, placeholders, warnings = [], [], []
    for task_name, task in root.get("dag", {}).get("tasks", {}).items():
        component = task["componentRef"]["name"]
        executor = spec["components"][component].get("executorLabel")
        image = executors.get(executor, {}).get("container", {}).get("image")
        tasks.append({"task": task_name, "component": component, "image": image})
        for input_name, value in task.get("inputs", {}).get("parameters", {}).items():
            constant = value.get("runtimeValue", {}).get("constant")
            if not isinstance(constant, str):
                continue
            for ph, meaning in LINEAGE_PLACEHOLDERS.items():
                if ph in constant:
                    placeholders.append({"task": task_name, "input": input_name, "placeholder": ph, "meaning": meaning})
            for ph, problem in BAD_PLACEHOLDERS.items():
                if ph in constant:
                    warnings.append(f"task {task_name!r} input {input_name!r} uses {ph}: {problem}")
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
    return {
        "name": spec.get("pipelineInfo", {}).get("name"),
        "inputs": inputs,
        "tasks": tasks,
        "secrets_as_env": secrets,
        "field_path_env": fields,
        "lineage_placeholders": placeholders,
        "warnings": warnings,
    }
