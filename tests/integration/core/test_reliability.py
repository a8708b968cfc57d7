"""Reliability against the real local stack: concurrent pipeline runs, servers lost mid-batch."""

import json
import multiprocessing as mp
import uuid

import localstack  # setup/localstack.py
import pytest

from mrhelpers import (
    Lineage,
    RegistryUnavailable,
    Settings,
    connect,
    find_versions,
    models_frame,
    register_version,
    versions_frame,
)
from mrhelpers.core.inspection import artifacts_frame
from mrhelpers.core.rest import session_for
from tests.conftest import stack_settings

FMT = dict(model_format_name="f", model_format_version="1")


def _pipeline_run(job):
    state_dir, bin_dir, model, version = job
    from mrhelpers import submit
    from mrhelpers.authoring.pipelines import model_registration_pipeline

    settings = Settings.from_env(state_dir=state_dir, bin_dir=bin_dir)
    run = submit(
        model_registration_pipeline,
        dict(model_name=model, version_name=version, model_uri=f"s3://b/{version}", author="t",
             registry_url=settings.component_registry_url),
        settings,
    )  # fmt: skip
    return run.state, run.run_id, run.outputs.get("version_name")


def test_eight_pipeline_runs_at_once_on_one_new_model(stack):
    model = f"parallel-{uuid.uuid4().hex[:8]}"
    jobs = [(str(stack.state_dir), str(stack.bin_dir), model, f"v{i}") for i in range(8)]
    with mp.get_context("spawn").Pool(8) as pool:
        out = pool.map(_pipeline_run, jobs)
    assert [o[0] for o in out] == ["SUCCEEDED"] * 8, out
    registry = connect(stack)
    assert (models_frame(registry)["model"] == model).sum() == 1
    frame = versions_frame(registry, model)
    assert sorted(frame.version) == [f"v{i}" for i in range(8)]
    for _, run_id, version in out:
        assert list(find_versions(registry, run_id=run_id).version) == [version]


def _batch(registry, model, n, done):
    """Register versions 0..n-1 of ``model`` as a batch job would, each with its own run id."""
    for i in range(n):
        if i in done:
            continue
        register_version(
            registry, model, f"v{i}", f"s3://b/{i}", lineage=Lineage.for_kfp_run(f"batch-{i}", "b", "ns"), **FMT
        )
        done.add(i)


@pytest.mark.parametrize("victim", ["registry", "mariadb"])
def test_server_killed_mid_batch_then_the_retried_batch_completes(tmp_path, monkeypatch, victim):
    settings = stack_settings(tmp_path / victim)
    try:
        localstack.up(settings, quiet=True)
        settings = Settings.from_env(state_dir=settings.state_dir, bin_dir=settings.bin_dir)
        registry = connect(settings)
        register_version(registry, "before", "v1", "s3://b/before", **FMT)
        state = json.loads((settings.state_dir / "state.json").read_text())
        session = session_for(registry)
        real = session.send
        calls = {"n": 0}

        def kill_on_fourth_version(method, path, params=None, body=None, *rest):
            if method == "POST" and path == "/model_versions":
                calls["n"] += 1
                if calls["n"] == 4:
                    binary = "model-registry" if victim == "registry" else "mariadbd"
                    localstack._stop_pid(state[victim]["pid"], binary, timeout=10)
            return real(method, path, params, body, *rest)

        monkeypatch.setattr(session, "send", kill_on_fourth_version)
        done: set[int] = set()
        lost = settings.registry_url if victim == "registry" else "answers, but its database does not"
        with pytest.raises(RegistryUnavailable, match=lost):
            _batch(registry, "batch", 8, done)
        monkeypatch.undo()
        assert done == {0, 1, 2}

        assert localstack.up(settings, quiet=True).ok
        registry = connect(settings)
        _batch(registry, "batch", 8, set())  # the whole batch again, from the start
        frame = versions_frame(registry, "batch")
        assert list(frame.version) == [f"v{i}" for i in range(8)]
        assert list(frame.source_id) == [f"batch-{i}" for i in range(8)]
        assert len(artifacts_frame(registry, "batch")) == 8  # nothing half-made, nothing doubled
        assert list(versions_frame(registry, "before").uri) == ["s3://b/before"]
    finally:
        localstack.down(settings, quiet=True)
