"""register_version, connect and the frames against the real local Model Registry server."""

import uuid

import pytest

from mrhelpers import (
    InvalidInput,
    Lineage,
    RegistryUnavailable,
    Settings,
    VersionConflict,
    connect,
    find_versions,
    models_frame,
    register_version,
    versions_frame,
)

FMT = dict(model_format_name="sklearn", model_format_version="1")


@pytest.fixture(scope="module")
def registry(stack):
    return connect(stack)


def fresh(prefix="m"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run(run_id):
    return Lineage.for_kfp_run(run_id, f"name-{run_id}", "ns-test")


def test_register_then_read_back(registry):
    name = fresh()
    res = register_version(
        registry,
        name,
        "v1",
        "s3://bucket/m.joblib",
        lineage=run("r1"),
        metadata={"accuracy": 0.93, "epochs": 3, "tags": ["a", "b"], "ok": True},
        description="first",
        **FMT,
    )
    assert res.created and res.version_name == "v1" and res.model_name == name
    frame = versions_frame(registry, name)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert (row.version, row.version_id, row.uri) == ("v1", res.version_id, "s3://bucket/m.joblib")
    assert (row.source_kind, row.source_class, row.source_group, row.source_id, row.source_name) == (
        "kfp",
        "pipelinerun",
        "ns-test",
        "r1",
        "name-r1",
    )
    assert row.metadata == {"accuracy": 0.93, "epochs": 3, "tags": '["a", "b"]', "ok": True}
    assert name in set(models_frame(registry)["model"])


def test_same_run_again_is_retry_safe(registry):
    name = fresh()
    first = register_version(registry, name, "v1", "s3://b/m", lineage=run("r1"), **FMT)
    again = register_version(registry, name, "v1", "s3://b/m", lineage=run("r1"), **FMT)
    assert not again.created
    assert (again.model_id, again.version_id, again.artifact_id) == (
        first.model_id,
        first.version_id,
        first.artifact_id,
    )
    assert len(versions_frame(registry, name)) == 1


def test_other_run_conflicts_and_names_the_owner(registry):
    name = fresh()
    first = register_version(registry, name, "v1", "s3://b/m", lineage=run("owner-run"), **FMT)
    with pytest.raises(VersionConflict) as info:
        register_version(registry, name, "v1", "s3://b/m2", lineage=run("other-run"), **FMT)
    assert info.value.owner_run_id == "owner-run" and info.value.version_id == first.version_id
    assert "owner-run" in str(info.value) and "on_conflict='bump'" in str(info.value)
    assert len(versions_frame(registry, name)) == 1


def test_conflict_without_lineage(registry):
    name = fresh()
    register_version(registry, name, "v1", "s3://b/m", **FMT)
    with pytest.raises(VersionConflict, match="without lineage"):
        register_version(registry, name, "v1", "s3://b/m", lineage=run("r2"), **FMT)


def test_bump_takes_the_next_free_name(registry):
    name = fresh()
    register_version(registry, name, "v1", "s3://b/m", lineage=run("a"), **FMT)
    second = register_version(registry, name, "v1", "s3://b/m", lineage=run("b"), on_conflict="bump", **FMT)
    third = register_version(registry, name, "v1", "s3://b/m", lineage=run("c"), on_conflict="bump", **FMT)
    assert (second.version_name, third.version_name) == ("v1-2", "v1-3")
    assert list(versions_frame(registry, name)["version"]) == ["v1", "v1-2", "v1-3"]
    # a retry of run b finds its bumped version instead of bumping again
    assert register_version(registry, name, "v1-2", "s3://b/m", lineage=run("b"), **FMT).created is False


@pytest.mark.parametrize(
    "bad",
    [
        {"version": ""},
        {"uri": "not a uri"},
        {"metadata": {"x": None}},
        {"metadata": {"x": [1, float("nan")]}},
        {"model_format_name": " "},
        {"on_conflict": "replace"},
    ],
)
def test_bad_input_creates_nothing(registry, bad):
    name = fresh("bad")
    before = len(models_frame(registry))
    args = {"version": "v1", "uri": "s3://b/m", **FMT, **bad}
    with pytest.raises(InvalidInput):
        register_version(registry, name, args.pop("version"), args.pop("uri"), lineage=run("r"), **args)
    assert len(models_frame(registry)) == before
    assert registry.get_registered_model(name) is None


def test_half_made_registration_is_finished_only_by_its_own_run(registry):
    from model_registry.types import ModelVersion, RegisteredModel

    from mrhelpers.core.registry import SOURCE_ID_KEY

    name = fresh("half")
    # What a crash between the second and third write leaves: a model and a version, no artifact.
    rm = registry.async_runner(registry._api.upsert_registered_model(RegisteredModel(name=name)))
    registry.async_runner(
        registry._api.upsert_model_version(
            ModelVersion(name="v1", author="x", custom_properties={SOURCE_ID_KEY: "r9"}), rm.id
        )
    )
    registry.async_runner(registry._api.upsert_model_version(ModelVersion(name="v2", author="x"), rm.id))
    assert versions_frame(registry, name).iloc[0].uri is None
    with pytest.raises(VersionConflict, match="'r9'"):
        register_version(registry, name, "v1", "s3://b/m", lineage=run("someone-else"), **FMT)
    res = register_version(registry, name, "v1", "s3://b/m", lineage=run("r9"), **FMT)
    row = versions_frame(registry, name).iloc[0]
    assert res.created and row.uri == "s3://b/m" and row.source_id == "r9"
    with pytest.raises(VersionConflict, match="without lineage"):  # owner unknown: nobody takes it over
        register_version(registry, name, "v2", "s3://b/m", lineage=run("r9"), **FMT)


def test_find_versions_by_run(registry):
    a, b = fresh(), fresh()
    register_version(registry, a, "v1", "s3://b/a", lineage=run("shared-run"), **FMT)
    register_version(registry, b, "v7", "s3://b/b", lineage=run("shared-run"), **FMT)
    register_version(registry, b, "v8", "s3://b/b", lineage=run("another"), **FMT)
    found = find_versions(registry, run_id="shared-run")
    assert sorted(zip(found.model, found.version, strict=True)) == sorted([(a, "v1"), (b, "v7")])


def test_versions_frame_of_unknown_model_is_empty(registry):
    assert versions_frame(registry, fresh("nobody")).empty


def test_unreachable_registry_is_named(tmp_path):
    from net import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RegistryUnavailable, match=rf"{url}.*make up"):
        connect(Settings(registry_url=url, state_dir=tmp_path), retries=2, backoff=0.05)


def test_url_without_scheme_is_refused(tmp_path):
    with pytest.raises(InvalidInput, match="http://"):
        connect(Settings(registry_url="127.0.0.1:8080", state_dir=tmp_path))
