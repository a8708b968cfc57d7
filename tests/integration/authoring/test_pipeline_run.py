"""A real kfp.local run of the registration pipeline against the real registry."""

import hashlib
import os
import threading
from pathlib import Path

import pytest
from kfp import dsl

from mrhelpers import RunFailed, connect, find_versions, submit
from mrhelpers.authoring.handles import last_run, run_component
from mrhelpers.authoring.pipelines import model_registration_pipeline
from mrhelpers.core.settings import TOKEN_ENV


def model_file(stack):
    """A small model file under the stack's state folder; its file:// URI."""
    path = Path(stack.state_dir) / "models" / "pipeline-model" / "model.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"kind": "linear-regression", "coef": [1.5, -2.0, 0.5], "intercept": 0.25}')
    return path.resolve().as_uri()


def args(stack, **extra):
    return dict(
        model_name="pipeline-model",
        version_name="v1",
        model_uri=model_file(stack),
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


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def token_digest() -> str:
    import hashlib
    import os

    return hashlib.sha256(os.environ.get("MODEL_REGISTRY_TOKEN", "").encode()).hexdigest()


def test_each_run_hands_its_own_token_to_its_task_and_never_to_this_process(stack, monkeypatch):
    """Two runs from two threads, two tokens: each task sees its own; os.environ never holds either."""
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    tokens = {"a": "tok-a-0123456789", "b": "tok-b-0123456789"}
    seen_here, results, done = set(), {}, threading.Event()

    def watch():
        while not done.is_set():
            seen_here.add(os.environ.get(TOKEN_ENV))

    def run(key):
        results[key] = run_component(token_digest, {}, stack.replace(token=tokens[key]))["Output"]

    watcher = threading.Thread(target=watch)
    watcher.start()
    runners = [threading.Thread(target=run, args=(k,)) for k in tokens]
    for t in runners:
        t.start()
    for t in runners:
        t.join()
    done.set()
    watcher.join()
    assert results == {k: hashlib.sha256(v.encode()).hexdigest() for k, v in tokens.items()}
    assert seen_here == {None}


def test_a_readers_own_kfp_local_setup_survives_submit(stack, tmp_path, capsys):
    from kfp import local
    from kfp.local import config

    mine = tmp_path / "my-root"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(mine))
    try:
        out = run_component(token_digest, {}, stack)
        assert config.LocalExecutionConfig.instance.pipeline_root == str(mine)
        assert out["Output"] == hashlib.sha256(stack.token.reveal().encode()).hexdigest()
        assert [p.name.startswith("token-digest-") for p in mine.iterdir()] == [True]  # the run used my root
        shown = capsys.readouterr().out  # one line per task; what kfp.local printed is in the run's log
        assert "token-digest" in shown and "executor_input" not in shown and len(shown.splitlines()) == 1
    finally:
        config.LocalExecutionConfig.instance = None  # the next test starts as a reader who never called init
