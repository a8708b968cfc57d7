"""Notebook 03: compile a pipeline to YAML and say what is inside."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from mrhelpers.errors import LineageWarning

# Placeholders that do not exist in KFP or crash kfp.local (see the design's verified facts).
BAD_PLACEHOLDERS = {
    "{{$.pipeline_job_resource_name}}": "crashes kfp.local (IndexError)",
    "{{$.pipeline_job_create_time_utc}}": "crashes kfp.local (IndexError)",
    "{{$.pipeline_job_schedule_time_utc}}": "crashes kfp.local (IndexError)",
}
PLACEHOLDER = re.compile(r"\{\{\$[^}]*\}\}")
LINEAGE_INPUTS = {"run_id": "{{$.pipeline_job_uuid}}", "run_name": "{{$.pipeline_job_name}}"}
"""Inputs of the registering component that must come from these placeholders."""
LINEAGE_PLACEHOLDERS = {
    "{{$.pipeline_job_uuid}}": "dsl.PIPELINE_JOB_ID_PLACEHOLDER (run id)",
    "{{$.pipeline_job_name}}": "dsl.PIPELINE_JOB_NAME_PLACEHOLDER (run name)",
}


def compile_pipeline(func: Callable[..., Any], path: str | Path) -> Path:
    """Compile a ``@dsl.pipeline`` function to a YAML package at ``path``.

    Folders are created as needed; an existing file is replaced. Then the
    package is checked: each problem :func:`describe_package` lists under
    ``warnings`` is emitted as a :class:`mrhelpers.errors.LineageWarning`.

    Returns:
        The package's path.
    """
    from kfp import compiler

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(func, str(path))
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
        exist or crash the local runner, and ``run_id``/``run_name`` inputs not fed
        by the run's placeholders (the lineage would not name the run).
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
    for task_name, task in root.get("dag", {}).get("tasks", {}).items():
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
                    warnings.append(f"task {task_name!r} input {input_name!r} uses {ph}: no such placeholder in KFP")
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
