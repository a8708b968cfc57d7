"""The compiled pipeline carries the Secret, the namespace and the lineage placeholders."""

import pytest
from kfp import dsl

from mrhelpers import InvalidInput, Settings, compile_pipeline, describe_package, submit
from mrhelpers.authoring.components import register_model
from mrhelpers.authoring.pipelines import model_registration_pipeline


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    path = compile_pipeline(model_registration_pipeline, tmp_path_factory.mktemp("pkg") / "sub" / "p.yaml")
    assert path.is_file()
    return describe_package(path)


def test_inputs(package):
    names = {i["name"] for i in package["inputs"]}
    assert {"model_name", "version_name", "model_uri", "author", "registry_url", "on_conflict"} <= names
    assert package["name"] == "model-registration"


def test_secret_mounted_as_env(package):
    assert package["secrets_as_env"] == [
        {"task": "register-model", "secret": "model-registry-auth", "key": "token", "env": "MODEL_REGISTRY_TOKEN"}
    ]


def test_namespace_from_field_path(package):
    assert package["field_path_env"] == [
        {"task": "register-model", "env": "POD_NAMESPACE", "field_path": "metadata.namespace"}
    ]


def test_lineage_placeholders(package):
    found = {(p["input"], p["placeholder"]) for p in package["lineage_placeholders"]}
    assert found == {("run_id", "{{$.pipeline_job_uuid}}"), ("run_name", "{{$.pipeline_job_name}}")}
    assert package["warnings"] == []


def test_bad_lineage_wiring_is_warned(tmp_path):
    from mrhelpers.core.errors import LineageWarning

    @dsl.pipeline(name="bad-lineage")
    def bad(registry_url: str):
        register_model(
            model_name="m",
            version_name="v",
            model_uri="s3://b/m",
            author="a",
            registry_url=registry_url,
            run_id=dsl.PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER,
            run_name="{{$.pipeline_name}}",
        )

    with pytest.warns(LineageWarning) as caught:
        info = describe_package(compile_pipeline(bad, tmp_path / "bad.yaml"))
    assert len(caught) == len(info["warnings"]) == 4
    text = "\n".join(info["warnings"])
    assert "'run_id' uses {{$.pipeline_job_resource_name}}: crashes kfp.local (IndexError)" in text
    assert "'run_name' uses {{$.pipeline_name}}: no such placeholder in KFP" in text
    assert "'run_id' is not fed by {{$.pipeline_job_uuid}}" in text and "'run_name' is not fed by" in text


@dsl.component(base_image="python:3.11")
def lineage_from_env() -> str:
    import os

    return os.environ.get("KFP_RUN_ID", "unknown") + os.environ.get("KFP_POD_NAMESPACE", "unknown")


@dsl.component(base_image="python:3.11")
def echo(text: str) -> str:
    return text


def test_env_var_kfp_never_sets_is_warned(tmp_path):
    from mrhelpers.core.errors import LineageWarning

    @dsl.pipeline(name="env-lineage")
    def from_env():
        lineage_from_env()

    with pytest.warns(LineageWarning) as caught:
        compile_pipeline(from_env, tmp_path / "env.yaml")
    text = "\n".join(str(w.message) for w in caught)
    assert len(caught) == 2
    assert "task 'lineage-from-env' reads the environment variable KFP_RUN_ID, which KFP never sets" in text
    assert "dsl.PIPELINE_JOB_ID_PLACEHOLDER" in text and "use_field_path_as_env" in text


@pytest.mark.parametrize("value", ["{{workflow.namespace}}", "{{pod.name}}", "run-{{workflow.uid}}"])
def test_argo_placeholder_value_is_warned(tmp_path, value):
    from mrhelpers.core.errors import LineageWarning

    @dsl.pipeline(name="argo-placeholder")
    def argo():
        with dsl.If(echo(text="x").output == "x"):  # nested DAGs are checked too
            echo(text=value)

    with pytest.warns(LineageWarning) as caught:
        compile_pipeline(argo, tmp_path / "argo.yaml")
    assert len(caught) == 1
    assert f"task 'echo-2' input 'text' uses {value[value.index('{{') :]}: KFP v2 does not substitute it" in str(
        caught[0].message
    )


def test_argo_placeholder_as_pipeline_default_is_warned(tmp_path):
    from mrhelpers.core.errors import LineageWarning

    @dsl.pipeline(name="argo-default")
    def argo(namespace: str = "{{workflow.namespace}}"):
        echo(text=namespace)

    with pytest.warns(LineageWarning, match="pipeline input 'namespace' defaults to {{workflow.namespace}}"):
        compile_pipeline(argo, tmp_path / "default.yaml")


def test_good_pipeline_compiles_without_warnings(tmp_path, recwarn):
    from mrhelpers.core.errors import LineageWarning

    compile_pipeline(model_registration_pipeline, tmp_path / "ok.yaml")
    assert not [w for w in recwarn if issubclass(w.category, LineageWarning)]


def test_component_installs_nothing_per_run():
    spec = register_model.component_spec
    command = " ".join(spec.implementation.container.command)
    assert "pip install" not in command
    assert "python" in spec.implementation.container.image  # kfp.local's SubprocessRunner expects it


def test_submit_refuses_unknown_arguments(tmp_path):
    with pytest.raises(InvalidInput, match="model_nam"):
        submit(model_registration_pipeline, {"model_nam": "x"}, Settings(state_dir=tmp_path))


def test_submit_refuses_a_non_pipeline(tmp_path):
    with pytest.raises(InvalidInput, match="dsl.pipeline"):
        submit(print, {}, Settings(state_dir=tmp_path))


def test_task_env_says_where_each_variable_comes_from(package):
    assert package["task_env"] == [
        {"task": "register-model", "env": "MODEL_REGISTRY_TOKEN", "from": "Secret model-registry-auth, key token"},
        {"task": "register-model", "env": "POD_NAMESPACE", "from": "the pod's metadata.namespace"},
    ]


def test_component_image_is_the_settings_at_compile_time_without_reimporting(tmp_path, monkeypatch):
    """Settings.component_image (MRH_COMPONENT_IMAGE) becomes every packaged component's image when compiled."""
    from mrhelpers.authoring.components import evaluate_model, train_model

    @dsl.pipeline(name="train-evaluate")
    def train_evaluate():
        trained = train_model(dataset="iris", c=1.0, max_iter=10, seed=1)
        evaluate_model(dataset="iris", seed=1, model=trained.outputs["model"])

    moved = "registry.example/team/mrhelpers-python:0.1.0"
    first = describe_package(compile_pipeline(train_evaluate, tmp_path / "a.yaml", Settings(state_dir=tmp_path)))
    monkeypatch.setenv("MRH_COMPONENT_IMAGE", moved)
    second = describe_package(compile_pipeline(train_evaluate, tmp_path / "b.yaml"))
    assert [t["image"] for t in first["tasks"]] == [Settings(state_dir=tmp_path).component_image] * 2
    assert [t["image"] for t in second["tasks"]] == [moved] * 2
    assert register_model.component_spec.implementation.container.image != moved  # the component is unchanged
