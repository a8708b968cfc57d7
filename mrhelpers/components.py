"""Notebook 02: the packaged KFP component that registers a model version.

Its body is one call of :func:`mrhelpers.registry.register_for_run`,
so the registration logic lives once, in the package. Locally the
SubprocessRunner runs it in this environment, where mrhelpers is installed; on a
cluster it runs in the project's component image (``COMPONENT_IMAGE``), which has
mrhelpers and the pinned client installed. Nothing is pip-installed per run.
"""

from typing import NamedTuple

from kfp import dsl

COMPONENT_IMAGE = "localhost/mrhelpers-python:0.1.0"
"""The component image built from setup/ (the name contains "python" so kfp.local accepts it)."""


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
    from mrhelpers.components_runtime import run_register_component

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
