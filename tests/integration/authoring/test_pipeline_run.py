"""A real kfp.local run of the registration pipeline against the real registry."""

from pathlib import Path

import pytest

from mrhelpers import RunFailed, connect, find_versions, submit
from mrhelpers.authoring.pipelines import example_model, model_registration_pipeline
from mrhelpers.authoring.runs import last_run


def args(stack, **extra):
    return dict(
        model_name="pipeline-model",
        version_name="v1",
        model_uri=example_model(stack),
        author="tests",
        registry_url=stack.component_registry_url,
        model_format_name="linear-json",
        **extra,
    )


def test_run_registers_with_lineage_to_the_run(stack, capsys):
    run = submit(model_registration_pipeline, args(stack, on_conflict="bump"), stack).wait()
    shown = capsys.readouterr().out
    assert [(t["task"], t["state"]) for t in run.tasks] == [("register-model", "SUCCEEDED")]
    assert 0 < run.tasks[0]["seconds"] < run.seconds
    assert "executor_input" not in shown and "register-model" in shown and len(shown.splitlines()) <= 3
    assert run.log.endswith("kfp-local.log") and run.run_name in run.log
    assert "executor_input" in Path(run.log).read_text()
    assert run.state == "SUCCEEDED" and run.run_id and run.run_name.startswith("model-registration-")
    found = find_versions(connect(stack), run_id=run.run_id)
    assert len(found) == 1
    row = found.iloc[0]
    assert (row.model, row.version, row.version_id) == (
        "pipeline-model",
        run.outputs["version_name"],
        run.outputs["version_id"],
    )
    assert (row.source_kind, row.source_class, row.source_group, row.source_name) == (
        "kfp",
        "pipelinerun",
        "local",
        run.run_name,
    )
    assert row.uri.startswith("file://") and row.uri.endswith("model.json")
    meta = run.outputs["model"]["metadata"]
    assert meta["model_version_id"] == run.outputs["version_id"] and meta["registry_url"] == stack.registry_url
    assert last_run(stack)["run_id"] == run.run_id


def test_failed_run_raises_with_its_reason(stack, capsys):
    run = submit(model_registration_pipeline, args(stack, on_conflict="error") | {"model_uri": "relative"}, stack)
    assert run.state == "FAILED"
    assert [(t["task"], t["state"]) for t in run.tasks] == [("register-model", "FAILED")]
    shown = capsys.readouterr().out
    assert "last lines of" in shown and "Invalid uri" in shown  # the tail names the cause
    with pytest.raises(RunFailed, match="register-model"):
        run.wait()


def test_token_reaches_the_task_environment_only_during_the_run(stack, monkeypatch):
    import hashlib
    import os

    from kfp import dsl

    from mrhelpers import ensure_secret
    from mrhelpers.backends.runs import run_component
    from mrhelpers.core.settings import TOKEN_ENV, Settings

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def token_digest() -> str:
        import hashlib
        import os

        return hashlib.sha256(os.environ.get("MODEL_REGISTRY_TOKEN", "").encode()).hexdigest()

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    ensure_secret(stack, stack.secret_name, {"token": "tok-for-the-task-0123456789"})
    settings = Settings.from_env(state_dir=stack.state_dir, bin_dir=stack.bin_dir)
    out = run_component(token_digest, {}, settings)
    assert out["Output"] == hashlib.sha256(b"tok-for-the-task-0123456789").hexdigest()
    assert TOKEN_ENV not in os.environ  # put there for the run only
