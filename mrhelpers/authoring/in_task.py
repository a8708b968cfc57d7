"""What runs inside a pipeline task's process: connect with the task's token, find its namespace, register."""

from __future__ import annotations

import dataclasses
import json
import os
from collections import namedtuple
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrhelpers.authoring.uris import serving_uri
from mrhelpers.core.registry import Lineage, RegistrationResult, connect, register_version
from mrhelpers.core.settings import TOKEN_ENV, Secret, Settings, pod_namespace

if TYPE_CHECKING:
    from model_registry import ModelRegistry

Outputs = namedtuple("RegistrationOutputs", ["model_id", "version_id", "version_name", "created", "run_id", "run_name"])


@dataclasses.dataclass(frozen=True)
class RunRegistration:
    """One registration from a pipeline task: what to register, where, and the run it comes from.

    ``run_id``/``run_name`` come from ``dsl.PIPELINE_JOB_ID_PLACEHOLDER``/``dsl.PIPELINE_JOB_NAME_PLACEHOLDER``;
    an empty ``namespace`` is found by :func:`resolve_namespace`. The rest are :func:`register_version`'s.
    """

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
    """The namespace a pipeline task runs in: ``given``; else ``POD_NAMESPACE`` (set on the cluster by
    ``kfp.kubernetes.use_field_path_as_env``); else the pod's own (:func:`mrhelpers.core.settings.pod_namespace`);
    else ``"local"`` (a kfp.local run)."""
    return given or os.environ.get("POD_NAMESPACE") or pod_namespace() or "local"


def connect_in_task(registry_url: str, author: str) -> ModelRegistry:
    """Connect from inside a pipeline task with the token in ``MODEL_REGISTRY_TOKEN`` (the Secret mounted as
    env on a cluster; the task's own env, set by ``submit``, locally)."""
    token = Secret(os.environ.get(TOKEN_ENV, ""))
    return connect(Settings(registry_url=registry_url.rstrip("/"), author=author, token=token, state_dir=Path(".")))


def register_for_run(reg: RunRegistration) -> RegistrationResult:
    """Register ``reg.model_uri`` with lineage to the run (what the ``register_model`` component does)."""
    return register_version(
        connect_in_task(reg.registry_url, reg.author), reg.model_name, reg.version_name, reg.model_uri,
        model_format_name=reg.model_format_name, model_format_version=reg.model_format_version,
        lineage=Lineage.for_kfp_run(reg.run_id, reg.run_name, resolve_namespace(reg.namespace)),
        metadata=reg.metadata, description=reg.description or None, author=reg.author, on_conflict=reg.on_conflict,
    )  # fmt: skip


def register_and_describe(output_model: Any, reg: RunRegistration) -> Outputs:
    """Register, then describe the registration in the component's output Model artifact."""
    result = register_for_run(reg)
    url = reg.registry_url.rstrip("/")
    output_model.metadata.update({
        "model_name": result.model_name, "version_name": result.version_name, "registered_model_id": result.model_id,
        "model_version_id": result.version_id, "model_artifact_id": result.artifact_id, "model_uri": reg.model_uri,
        "registry_url": url, "created": result.created,
    })  # fmt: skip
    path = Path(output_model.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(output_model.metadata, indent=2, sort_keys=True))
    print(
        f"Registered {result.model_name} {result.version_name} (version id {result.version_id}, "
        f"{'created' if result.created else 'already there from this run'}) at {url}"
    )
    return Outputs(result.model_id, result.version_id, result.version_name, result.created, reg.run_id, reg.run_name)


def register_trained(model: Any, metrics: Any, dataset: str, c: float, max_iter: int, s3_endpoint: str, **reg: Any):
    """Register a model artifact a run wrote, with its metrics, parameters and dataset as metadata."""
    where = serving_uri(model.uri, s3_endpoint=s3_endpoint)
    scores = {k: v for k, v in dict(metrics.metadata).items() if isinstance(v, (int, float))}
    metadata = {
        **scores, "dataset": dataset, "c": float(c), "max_iter": int(max_iter),
        "metrics": ", ".join(f"{k} {v:g}" for k, v in sorted(scores.items())),  # the UI (v0.2.22) shows only strings
        "code_version": dict(model.metadata).get("code_version", "unknown"),  # the training code's, from train_model
        **({"s3_endpoint": where["s3_endpoint"]} if "s3_endpoint" in where else {}),
    }  # fmt: skip
    result = register_for_run(RunRegistration(model_uri=where["uri"], metadata=metadata, on_conflict="bump", **reg))
    print(f"Registered {result.model_name} {result.version_name} (id {result.version_id}) from {where['uri']}")
    return namedtuple("Registered", ["version_name", "version_id"])(result.version_name, result.version_id)
