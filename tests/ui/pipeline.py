"""The pipeline the ui tier runs: notebook 06's, train -> evaluate -> gate -> register -> promote."""

from kfp import dsl

from mrhelpers.components import (
    evaluate_model,
    production_accuracy,
    promote_version,
    register_trained_model,
    train_model,
)
from mrhelpers.pipelines import with_token


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def passes_gate(accuracy: float, production: float, threshold: float) -> bool:
    return accuracy >= threshold and accuracy > production


@dsl.pipeline(name="train-evaluate-register")
def train_and_register_pipeline(model_name: str, version_name: str, author: str, registry_url: str, c: float = 1.0):
    trained = train_model(dataset="breast_cancer", c=c, max_iter=500, seed=7)
    scored = evaluate_model(dataset="breast_cancer", seed=7, model=trained.outputs["model"])
    current = with_token(production_accuracy(model_name=model_name, registry_url=registry_url, author=author))
    gate = passes_gate(accuracy=scored.outputs["Output"], production=current.output, threshold=0.9)
    with dsl.If(gate.output == True, name="better-than-production"):  # noqa: E712 - a KFP condition
        registered = with_token(
            register_trained_model(
                model=trained.outputs["model"], metrics=scored.outputs["metrics"], model_name=model_name,
                version_name=version_name, author=author, registry_url=registry_url, dataset="breast_cancer", c=c,
                max_iter=500, run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER, run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            )
        )  # fmt: skip
        with_token(promote_version(model_name=model_name, version_name=registered.outputs["version_name"],
                                   registry_url=registry_url, author=author))  # fmt: skip
