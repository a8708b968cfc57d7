"""What runs inside a pipeline task's process: connect with the task's token, find its namespace, register."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrhelpers.authoring.uris import serving_uri
from mrhelpers.core.registry import Lineage, RegistrationResult, connect, register_version
from mrhelpers.core.settings import TOKEN_ENV, Secret, Settings, pod_namespace

if TYPE_CHECKING:
    from model_registry import ModelRegistry


@dataclasses.dataclass(frozen=True)
class RunRegistration:
    """One registration from a pipeline task: the ``register_model`` component's inputs (an empty ``namespace``
    is found by :func:`resolve_namespace`; the rest are :func:`register_version`'s)."""

    model_name: str
    version_name: str
    model_uri: str
    author: str
    registry_url: str
    run_id: str = ""
    run_name: str = ""
    model_format_name: str = "sklearn"
    model_format_version: str = "1"
    namespace: str = ""
    description: str = ""
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    on_conflict: str = "error"


def resolve_namespace(given: str = "") -> str:
    """``given``; else ``POD_NAMESPACE`` (set on a cluster by ``use_field_path_as_env``); else the pod's own;
    else ``"local"`` (a kfp.local run)."""
    return given or os.environ.get("POD_NAMESPACE") or pod_namespace() or "local"


def connect_in_task(registry_url: str, author: str) -> ModelRegistry:
    """Connect from inside a pipeline task with the token in ``MODEL_REGISTRY_TOKEN``."""
    token = Secret(os.environ.get(TOKEN_ENV, ""))
    return connect(Settings(registry_url=registry_url, author=author, token=token, state_dir=Path(".")))


def register_for_run(reg: RunRegistration) -> RegistrationResult:
    """Register ``reg.model_uri`` with lineage to the run (what the ``register_model`` component does)."""
    return register_version(
        connect_in_task(reg.registry_url, reg.author),
        reg.model_name,
        reg.version_name,
        reg.model_uri,
        model_format_name=reg.model_format_name,
        model_format_version=reg.model_format_version,
        lineage=Lineage.for_kfp_run(reg.run_id, reg.run_name, resolve_namespace(reg.namespace)),
        metadata=reg.metadata,
        description=reg.description or None,
        author=reg.author,
        on_conflict=reg.on_conflict,
    )


def register_and_describe(output_model: Any, reg: RunRegistration) -> tuple[str, str, str, bool, str, str]:
    """Register, write the registration into the output Model artifact; the component's outputs."""
    r = register_for_run(reg)
    url = reg.registry_url.rstrip("/")
    ids = {"registered_model_id": r.model_id, "model_version_id": r.version_id, "model_artifact_id": r.artifact_id}
    described = {"model_name": r.model_name, "version_name": r.version_name, "model_uri": reg.model_uri}
    output_model.metadata.update(**described, **ids, registry_url=url, created=r.created)
    Path(output_model.path).parent.mkdir(parents=True, exist_ok=True)
    Path(output_model.path).write_text(json.dumps(output_model.metadata, indent=2, sort_keys=True))
    how = "created" if r.created else "already there from this run"
    print(f"Registered {r.model_name} {r.version_name} (version id {r.version_id}, {how}) at {url}")
    return r.model_id, r.version_id, r.version_name, r.created, reg.run_id, reg.run_name


def register_trained(model: Any, metrics: Any, dataset: str, c: float, max_iter: int, s3_endpoint: str, **reg: Any):
    """Register a model artifact a run wrote, with its metrics, parameters and dataset as metadata."""
    where = serving_uri(model.uri, s3_endpoint=s3_endpoint)
    scores = {k: v for k, v in dict(metrics.metadata).items() if isinstance(v, (int, float))}
    metadata = {**scores, "dataset": dataset, "c": float(c), "max_iter": int(max_iter)}
    metadata["metrics"] = ", ".join(f"{k} {v:g}" for k, v in sorted(scores.items()))  # the UI shows only strings
    metadata["code_version"] = dict(model.metadata).get("code_version", "unknown")  # set by train_model
    metadata.update({"s3_endpoint": where["s3_endpoint"]} if "s3_endpoint" in where else {})
    result = register_for_run(RunRegistration(model_uri=where["uri"], metadata=metadata, on_conflict="bump", **reg))
    print(f"Registered {result.model_name} {result.version_name} (id {result.version_id}) from {where['uri']}")
    return result.version_name, result.version_id
