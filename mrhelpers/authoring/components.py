"""Notebook 02: the packaged KFP component that registers a model version.

Its body is one call of :func:`mrhelpers.core.registry.register_for_run`,
so the registration logic lives once, in the package. Locally the
SubprocessRunner runs it in this environment, where mrhelpers is installed; on a
cluster it runs in the project's component image (``COMPONENT_IMAGE``), which has
mrhelpers and the pinned client installed. Nothing is pip-installed per run.
"""

import os
from typing import NamedTuple

from kfp import dsl

DEFAULT_COMPONENT_IMAGE = "localhost/mrhelpers-python:0.1.0"
COMPONENT_IMAGE = os.environ.get("MRH_COMPONENT_IMAGE") or DEFAULT_COMPONENT_IMAGE
"""The component image built from setup/component-image (``setup/cluster.sh up`` loads it into kind).

On another cluster, push the image to a registry it pulls from and set ``MRH_COMPONENT_IMAGE`` before
importing mrhelpers: the components are defined, with their image, when this module is imported.
Locally kfp.local needs "python" in the name to run it in this environment."""


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def register_model(
    model_name: str,
    version_name: str,
    model_uri: str,
    author: str,
    registry_url: str,
    output_model: dsl.Output[dsl.Model],
    model_format_name: str = "sklearn",
    model_format_version: str = "1",
    run_id: str = "",
    run_name: str = "",
    namespace: str = "",
    description: str = "",
    metadata: dict = {},  # noqa: B006 - KFP component defaults must be literals
    on_conflict: str = "error",
) -> NamedTuple(
    "RegistrationOutputs",
    [
        ("model_id", str),
        ("version_id", str),
        ("version_name", str),
        ("created", bool),
        ("run_id", str),
        ("run_name", str),
    ],
):
    """Register ``model_uri`` as ``model_name``/``version_name`` with lineage to this run.

    ``run_id`` and ``run_name`` come from ``dsl.PIPELINE_JOB_ID_PLACEHOLDER`` and
    ``dsl.PIPELINE_JOB_NAME_PLACEHOLDER``; the token from the environment variable
    ``MODEL_REGISTRY_TOKEN``. The registry ids are written into ``output_model``'s metadata.
    """
    from mrhelpers.authoring.components_runtime import run_register_component

    return run_register_component(
        output_model,
        model_name=model_name,
        version_name=version_name,
        model_uri=model_uri,
        author=author,
        registry_url=registry_url,
        model_format_name=model_format_name,
        model_format_version=model_format_version,
        run_id=run_id,
        run_name=run_name,
        namespace=namespace,
        description=description,
        metadata=metadata,
        on_conflict=on_conflict,
    )


# --------------------------------------------------------------------------- notebook 06: train ... promote


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def train_model(dataset: str, c: float, max_iter: int, seed: int, model: dsl.Output[dsl.Model]):
    """Fit a scaled logistic regression on the training split of a dataset scikit-learn ships."""
    from mrhelpers.authoring.training import train_to

    info = train_to(model.path, dataset=dataset, c=c, max_iter=max_iter, seed=seed)
    model.metadata.update({"framework": "sklearn", "dataset": dataset, "c": c, "max_iter": max_iter, **info})


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def evaluate_model(dataset: str, seed: int, model: dsl.Input[dsl.Model], metrics: dsl.Output[dsl.Metrics]) -> float:
    """Score the model on the held-out split; log the scores as KFP Metrics; return the accuracy."""
    from mrhelpers.authoring.training import evaluate_file

    scores = evaluate_file(model.path, dataset, seed)
    for name, value in scores.items():
        metrics.log_metric(name, value)
    return scores["accuracy"]


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def production_accuracy(model_name: str, registry_url: str, author: str) -> float:
    """The accuracy recorded on the current production version, or -1.0 when there is none."""
    from mrhelpers.authoring.training import production_metric

    return production_metric(registry_url, model_name, "accuracy", author)


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def passes_gate(accuracy: float, production: float, threshold: float) -> bool:
    """True when the new model reaches ``threshold`` and beats production."""
    verdict = accuracy >= threshold and accuracy > production
    print(
        f"accuracy {accuracy:.4f}, production {production:.4f}, threshold {threshold:.4f}: "
        f"{'register' if verdict else 'do not register'}"
    )
    return verdict


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def register_trained_model(
    model: dsl.Input[dsl.Model],
    metrics: dsl.Input[dsl.Metrics],
    model_name: str,
    version_name: str,
    author: str,
    registry_url: str,
    dataset: str,
    c: float,
    max_iter: int,
    run_id: str = "",
    run_name: str = "",
    namespace: str = "",
    s3_endpoint: str = "http://seaweedfs.kubeflow:9000",
) -> NamedTuple("Registered", [("version_name", str), ("version_id", str)]):
    """Register the model file the run wrote, with its metrics, parameters and dataset as metadata."""
    from mrhelpers.authoring.components_runtime import register_trained

    return register_trained(
        model,
        metrics,
        model_name=model_name,
        version_name=version_name,
        author=author,
        registry_url=registry_url,
        dataset=dataset,
        c=c,
        max_iter=max_iter,
        run_id=run_id,
        run_name=run_name,
        namespace=namespace,
        s3_endpoint=s3_endpoint,
    )


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def promote_version(
    model_name: str, version_name: str, registry_url: str, author: str, demote_to: str = "candidate"
) -> str:
    """Make the version the model's production version; the previous one goes to ``demote_to``."""
    from mrhelpers.core.lifecycle import set_stage
    from mrhelpers.core.registry import connect_in_task

    change = set_stage(
        connect_in_task(registry_url, author), model_name, version_name, "production", demote_to=demote_to
    )
    print(f"{model_name} {version_name} is in production; demoted: {', '.join(change.demoted) or 'none'}")
    return ",".join(change.demoted)
