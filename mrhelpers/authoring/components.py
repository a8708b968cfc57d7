"""The packaged KFP components: register a version; train, evaluate, read production's accuracy, register with
metrics, promote. Their bodies call into the package; on a cluster they run in ``Settings.component_image``."""

from typing import NamedTuple

from kfp import dsl

from mrhelpers.core.settings import DEFAULT_COMPONENT_IMAGE


@dsl.component(base_image=DEFAULT_COMPONENT_IMAGE, install_kfp_package=False)
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
    """Register ``model_uri`` with lineage to this run (``run_id``/``run_name`` from ``dsl.PIPELINE_JOB_ID_PLACEHOLDER``
    and ``dsl.PIPELINE_JOB_NAME_PLACEHOLDER``; the token from ``MODEL_REGISTRY_TOKEN``); ids into ``output_model``."""
    inputs = dict(locals())  # this component's inputs by name, taken before the import below adds a name
    from mrhelpers.authoring.in_task import RunRegistration, register_and_describe

    return register_and_describe(inputs.pop("output_model"), RunRegistration(**inputs))


@dsl.component(base_image=DEFAULT_COMPONENT_IMAGE, install_kfp_package=False)
def train_model(dataset: str, c: float, max_iter: int, seed: int, model: dsl.Output[dsl.Model]):
    """Fit a scaled logistic regression on the training split of a dataset scikit-learn ships."""
    from mrhelpers.authoring.training import train_to

    info = train_to(model.path, dataset=dataset, c=c, max_iter=max_iter, seed=seed)
    model.metadata.update({"framework": "sklearn", "dataset": dataset, "c": c, "max_iter": max_iter, **info})


@dsl.component(base_image=DEFAULT_COMPONENT_IMAGE, install_kfp_package=False)
def evaluate_model(dataset: str, seed: int, model: dsl.Input[dsl.Model], metrics: dsl.Output[dsl.Metrics]) -> float:
    """Score the model on the held-out split; log the scores as KFP Metrics; return the accuracy."""
    from mrhelpers.authoring.training import evaluate_file

    scores = evaluate_file(model.path, dataset, seed)
    for name, value in scores.items():
        metrics.log_metric(name, value)
    return scores["accuracy"]


@dsl.component(base_image=DEFAULT_COMPONENT_IMAGE, install_kfp_package=False)
def production_accuracy(model_name: str, registry_url: str, author: str) -> float:
    """The accuracy recorded on the current production version, or -1.0 when there is none."""
    from mrhelpers.authoring.training import production_metric

    return production_metric(registry_url, model_name, "accuracy", author)


@dsl.component(base_image=DEFAULT_COMPONENT_IMAGE, install_kfp_package=False)
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
    inputs = dict(locals())  # this component's inputs by name
    from mrhelpers.authoring.in_task import register_trained

    return register_trained(inputs.pop("model"), inputs.pop("metrics"), **inputs)


@dsl.component(base_image=DEFAULT_COMPONENT_IMAGE, install_kfp_package=False)
def promote_version(
    model_name: str, version_name: str, registry_url: str, author: str, demote_to: str = "candidate"
) -> str:
    """Make the version the model's production version; the previous one goes to ``demote_to``."""
    from mrhelpers.authoring.in_task import connect_in_task
    from mrhelpers.core.lifecycle import set_stage

    registry = connect_in_task(registry_url, author)
    change = set_stage(registry, model_name, version_name, "production", demote_to=demote_to)
    print(f"{model_name} {version_name} is in production; demoted: {', '.join(change.demoted) or 'none'}")
    return ",".join(change.demoted)
