"""Issue-3 guarantees against the real server: no half-written models, races, server loss."""

import json
import multiprocessing as mp
import time
import uuid

import localstack  # setup/localstack.py
import pytest

from mrhelpers import (
    InvalidInput,
    Lineage,
    RegistryUnavailable,
    Settings,
    VersionConflict,
    connect,
    models_frame,
    register_version,
    versions_frame,
)
from mrhelpers.core.inspection import artifacts_frame
from mrhelpers.core.rest import session_for
from tests.conftest import stack_settings
from tests.unit.core.test_registration_inputs import BAD_INPUTS, GOOD, LINEAGE

FMT = dict(model_format_name="sklearn", model_format_version="1")


def counts(registry):
    models = models_frame(registry, count_versions=True)
    return len(models), int(models["versions"].sum()), len(artifacts_frame(registry))


@pytest.mark.parametrize(("field", "change"), BAD_INPUTS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_INPUTS)])
def test_bad_input_leaves_the_registry_unchanged(stack, field, change):
    registry = connect(stack)
    name = f"bad-{uuid.uuid4().hex[:8]}"
    before = counts(registry)
    args = {**GOOD, "name": name, "lineage": LINEAGE, **change}
    with pytest.raises(InvalidInput) as info:
        register_version(registry, args.pop("name"), args.pop("version"), args.pop("uri"), **args)
    assert type(info.value) is InvalidInput and info.value.field == field
    assert counts(registry) == before
    if isinstance(args.get("name", name), str):
        assert registry.get_registered_model(name) is None


def _register(job):
    state_dir, bin_dir, name, version, run_id, on_conflict, start = job
    registry = connect(Settings.from_env(state_dir=state_dir, bin_dir=bin_dir))
    while time.time() < start:
        time.sleep(0.001)
    try:
        res = register_version(
            registry,
            name,
            version,
            f"s3://b/{run_id}",
            lineage=Lineage.for_kfp_run(run_id, run_id, "ns"),
            on_conflict=on_conflict,
            **FMT,
        )
        return ("ok", res.model_id, res.version_name, res.version_id, res.artifact_id, res.created)
    except VersionConflict as exc:
        return ("conflict", exc.version_name, exc.owner_run_id)
    except Exception as exc:  # returned, not raised, so a failing test shows every outcome
        return ("error", type(exc).__name__, str(exc))


def _race(stack, jobs, timeout=240):
    """Run ``_register`` jobs in as many processes, all starting at once; a hang fails after ``timeout`` s."""
    start = time.time() + 3.0
    full = [(str(stack.state_dir), str(stack.bin_dir), *job, start) for job in jobs]
    with mp.get_context("spawn").Pool(len(full)) as pool:
        return pool.map_async(_register, full).get(timeout=timeout)


def test_processes_racing_on_a_new_model_all_succeed_with_one_model(stack):
    name = f"race-{uuid.uuid4().hex[:8]}"
    out = _race(stack, [(name, f"v{i}", f"run-{i}", "error") for i in range(6)])
    assert [o[0] for o in out] == ["ok"] * 6
    assert len({o[1] for o in out}) == 1
    registry = connect(stack)
    assert (models_frame(registry)["model"] == name).sum() == 1
    assert sorted(versions_frame(registry, name)["version"]) == [f"v{i}" for i in range(6)]


def test_racing_runs_on_one_version_never_share_it(stack):
    name = f"race1-{uuid.uuid4().hex[:8]}"
    out = _race(stack, [(name, "v1", f"run-{i}", "error") for i in range(4)])
    winners = [o for o in out if o[0] == "ok"]
    assert len(winners) == 1 and all(o[0] == "conflict" for o in out if o[0] != "ok")
    registry = connect(stack)
    arts = artifacts_frame(registry, name)
    assert len(arts) == 1  # one version, one artifact: no loser wrote onto the winner's version
    frame = versions_frame(registry, name)
    assert list(frame.version) == ["v1"] and frame.iloc[0].uri == f"s3://b/{frame.iloc[0].source_id}"

    bumped = _race(stack, [(name, "v1", f"bump-{i}", "bump") for i in range(4)])
    assert all(o[0] == "ok" for o in bumped)
    assert sorted(o[2] for o in bumped) == ["v1-2", "v1-3", "v1-4", "v1-5"]
    assert len(artifacts_frame(registry, name)) == 5


def test_server_stopped_between_writes_then_rerun_finishes(tmp_path, monkeypatch):
    settings = stack_settings(tmp_path / "flaky")
    try:
        localstack.up(settings, quiet=True)
        settings = Settings.from_env(state_dir=settings.state_dir, bin_dir=settings.bin_dir)
        registry = connect(settings)
        register_version(registry, "earlier", "v1", "s3://b/e", lineage=LINEAGE, **FMT)
        state = json.loads((settings.state_dir / "state.json").read_text())
        session = session_for(registry)
        real = session.send

        def stop_server_then_write(method, path, params=None, body=None, *rest):
            if method == "POST" and path.endswith("/artifacts"):
                localstack._stop_pid(state["registry"]["pid"], "model-registry")  # the real server goes away
            return real(method, path, params, body, *rest)

        monkeypatch.setattr(session, "send", stop_server_then_write)
        lineage = Lineage.for_kfp_run("run-interrupted", "n", "ns")
        with pytest.raises(RegistryUnavailable, match=settings.registry_url):
            register_version(registry, "interrupted", "v1", "s3://b/i", lineage=lineage, **FMT)
        monkeypatch.undo()

        assert localstack.up(settings, quiet=True).ok
        assert Settings.from_env(state_dir=settings.state_dir).registry_url == settings.registry_url  # same port
        registry = connect(settings)
        with pytest.raises(VersionConflict, match="run-interrupted"):  # another run may not take it over
            register_version(registry, "interrupted", "v1", "s3://b/x", lineage=LINEAGE, **FMT)
        res = register_version(registry, "interrupted", "v1", "s3://b/i", lineage=lineage, **FMT)
        assert res.created
        row = versions_frame(registry, "interrupted").iloc[0]
        assert (row.uri, row.source_id) == ("s3://b/i", "run-interrupted")
        assert register_version(registry, "interrupted", "v1", "s3://b/i", lineage=lineage, **FMT).created is False
        assert list(versions_frame(registry, "earlier")["version"]) == ["v1"]  # earlier data intact
    finally:
        localstack.down(settings, quiet=True)


def test_metadata_reserved_keys_and_json_rule(stack):
    registry = connect(stack)
    name = f"meta-{uuid.uuid4().hex[:8]}"
    with pytest.raises(InvalidInput, match="mrh_"):
        register_version(registry, name, "v1", "s3://b/m", metadata={"mrh_stage": "production"}, **FMT)
    register_version(
        registry, name, "v1", "s3://b/m", lineage=LINEAGE, metadata={"params": {"C": 1.0, "kernel": "rbf"}}, **FMT
    )
    row = versions_frame(registry, name).iloc[0]
    assert json.loads(row.metadata["params"]) == {"C": 1.0, "kernel": "rbf"}
    assert "mrh_source_id" not in row.metadata and row.source_id == LINEAGE.id
