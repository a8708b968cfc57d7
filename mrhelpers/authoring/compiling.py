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

BAD_PLACEHOLDERS = dict.fromkeys(
    ["{{$.pipeline_job_resource_name}}", "{{$.pipeline_job_create_time_utc}}", "{{$.pipeline_job_schedule_time_utc}}"],
    "crashes kfp.local (IndexError)",
)
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
"""Inputs of the registering component that must come from these placeholders, which mean:"""
LINEAGE_PLACEHOLDERS = {
    "{{$.pipeline_job_uuid}}": "dsl.PIPELINE_JOB_ID_PLACEHOLDER (run id)",
    "{{$.pipeline_job_name}}": "dsl.PIPELINE_JOB_NAME_PLACEHOLDER (run name)",
}
NOT_SUBSTITUTED = (
    "KFP v2 does not substitute it (Argo's {{workflow.*}}/{{pod.*}} are not KFP's): the task gets the text itself; "
    "use dsl.PIPELINE_JOB_ID_PLACEHOLDER / dsl.PIPELINE_JOB_NAME_PLACEHOLDER, or POD_NAMESPACE from "
    "kubernetes.use_field_path_as_env for the namespace"
)


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
    """Summarise a compiled pipeline package (``known_placeholders``: the ``{{$...}}`` that exist; default kfp's).

    Returns a dict: ``name``; ``inputs`` (name, type, default); ``tasks`` (task, component, image);
    ``secrets_as_env`` (task, secret, key, env); ``field_path_env`` (task, env, field_path); ``task_env``
    (task, env, from: both as one table); ``lineage_placeholders`` (task, input, placeholder, meaning); and
    ``warnings``: placeholders that do not exist, crash kfp.local or that KFP v2 never substitutes
    (``{{workflow.*}}``, ``{{pod.*}}``), ``run_id``/``run_name`` inputs not fed by the run's placeholders,
    and component code reading a ``KFP_*`` variable KFP never sets.
    """
    if known_placeholders is None:
        from kfp import dsl

        known_placeholders = {v for k, v in vars(dsl).items() if k.endswith("_PLACEHOLDER")}

    def unknown(text: Any) -> list[str]:
        found = PLACEHOLDER.findall(text) if isinstance(text, str) else []
        return [f"{ph}: {'no such placeholder in KFP' if ph.startswith('{{$') else NOT_SUBSTITUTED}"
                for ph in found if ph not in known_placeholders]  # fmt: skip

    docs = list(yaml.safe_load_all(Path(path).read_text()))
    spec, platform = docs[0], (docs[1] if len(docs) > 1 and docs[1] else {})
    params = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    inputs = [{"name": n, "type": p.get("parameterType"), "default": p.get("defaultValue")} for n, p in params.items()]
    warnings = [
        f"pipeline input {n!r} defaults to {w}" for n, p in params.items() for w in unknown(p.get("defaultValue"))
    ]
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    tasks, placeholders = [], []
    for task_name, task in _all_tasks(spec):
        component = spec["components"][task["componentRef"]["name"]]
        container = executors.get(component.get("executorLabel"), {}).get("container", {})
        tasks.append({"task": task_name, "component": task["componentRef"]["name"], "image": container.get("image")})
        given = {
            k: v.get("runtimeValue", {}).get("constant")
            for k, v in task.get("inputs", {}).get("parameters", {}).items()
        }
        for name, expected in LINEAGE_INPUTS.items():
            if name in component.get("inputDefinitions", {}).get("parameters", {}) and given.get(name) != expected:
                warnings.append(f"task {task_name!r} input {name!r} is not fed by {expected} "
                                f"({LINEAGE_PLACEHOLDERS[expected]}): the lineage would not name the run")  # fmt: skip
        for name, value in ((k, v) for k, v in given.items() if isinstance(v, str)):
            warnings += [f"task {task_name!r} input {name!r} uses {w}" for w in unknown(value)]
            warnings += [f"task {task_name!r} input {name!r} uses {ph}: {why}" for ph, why in BAD_PLACEHOLDERS.items()
                         if ph in value]  # fmt: skip
            placeholders += [{"task": task_name, "input": name, "placeholder": ph, "meaning": meaning}
                             for ph, meaning in LINEAGE_PLACEHOLDERS.items() if ph in value]  # fmt: skip
        code = "\n".join([*container.get("command", []), *container.get("args", [])])
        for env in sorted(set(KFP_ENV.findall(code)) - KFP_SET_ENV):
            instead = ENV_INSTEAD.get(env, "an input fed by one of kfp.dsl's *_PLACEHOLDER constants")
            only = " and ".join(sorted(KFP_SET_ENV))
            warnings.append(f"task {task_name!r} reads the environment variable {env}, which KFP never sets (it sets "
                            f"only {only}): the value would be missing; use {instead}")  # fmt: skip
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
    return {"name": spec.get("pipelineInfo", {}).get("name"), "task_env": task_env, "inputs": inputs, "tasks": tasks,
            "secrets_as_env": secrets, "field_path_env": fields, "lineage_placeholders": placeholders,
            "warnings": warnings}  # fmt: skip


def _all_tasks(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every task of the root DAG and of nested DAGs (``dsl.If``, ``dsl.ParallelFor``) that runs a container."""
    dags = [spec["root"].get("dag", {}), *(c.get("dag", {}) for c in spec.get("components", {}).values())]
    return [(name, task) for dag in dags for name, task in dag.get("tasks", {}).items()
            if spec["components"][task["componentRef"]["name"]].get("executorLabel")]  # fmt: skip
