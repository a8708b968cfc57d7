"""The pipeline that registers a model with lineage to its run, and a registry task's token wiring."""

from typing import Any, NamedTuple

from kfp import dsl, kubernetes

from mrhelpers.authoring.components import register_model
from mrhelpers.core.settings import DEFAULT_SECRET_NAME, SECRET_TOKEN_KEY, TOKEN_ENV


def with_token(task: Any) -> Any:
    """Give a registry-touching task the token (Secret as env) and its namespace; never cache it (its
    registration is a side effect)."""
    task.set_caching_options(False)
    kubernetes.use_secret_as_env(task, secret_name=DEFAULT_SECRET_NAME, secret_key_to_env={SECRET_TOKEN_KEY: TOKEN_ENV})
    kubernetes.use_field_path_as_env(task, env_name="POD_NAMESPACE", field_path="metadata.namespace")
    return task


class PipelineOutputs(NamedTuple):
    """What a run of :func:`model_registration_pipeline` returns."""

    model_id: str
    version_id: str
    version_name: str
    created: bool
    run_id: str
    run_name: str
    model: dsl.Model


@dsl.pipeline(
    name="model-registration",
    description="Register a model artifact in the Kubeflow Model Registry with lineage to this run.",
)
def model_registration_pipeline(
    model_name: str,
    version_name: str,
    model_uri: str,
    author: str,
    registry_url: str,
    model_format_name: str = "sklearn",
    model_format_version: str = "1",
    on_conflict: str = "error",
) -> PipelineOutputs:
    """Register ``model_uri``: token and namespace by :func:`with_token`, run id and name from KFP's placeholders."""
    task = register_model(
        model_name=model_name,
        version_name=version_name,
        model_uri=model_uri,
        author=author,
        registry_url=registry_url,
        model_format_name=model_format_name,
        model_format_version=model_format_version,
        run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
        on_conflict=on_conflict,
    )
    out = with_token(task).outputs
    return PipelineOutputs(
        out["model_id"],
        out["version_id"],
        out["version_name"],
        out["created"],
        out["run_id"],
        out["run_name"],
        out["output_model"],
    )
