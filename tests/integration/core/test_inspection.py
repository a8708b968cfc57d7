"""Frames, lineage look-ups, the figure and the life cycle, against the real server."""

import uuid

import pytest

from mrhelpers import InvalidInput, Lineage, Settings, connect, inspection, register_version, versions_frame
from mrhelpers.core import rest
from mrhelpers.core.lifecycle import archive_version, production_version, restore_version, set_stage

FMT = dict(model_format_name="onnx", model_format_version="1")


@pytest.fixture(scope="module")
def model(stack):
    registry = connect(stack)
    name = f"insp-{uuid.uuid4().hex[:8]}"
    for i in range(7):
        register_version(
            registry,
            name,
            f"v{i}",
            f"s3://b/{i}",
            lineage=Lineage.for_kfp_run(f"r{i % 3}", f"run-{i % 3}", "ns"),
            metadata={"i": i},
            **FMT,
        )
    return registry, name


def test_paging_crosses_page_boundaries(model, monkeypatch):
    registry, name = model
    monkeypatch.setattr(rest, "PAGE", 3)  # every listing pages through the session
    frame = versions_frame(registry, name)
    assert list(frame.version) == [f"v{i}" for i in range(7)]
    assert [m["i"] for m in frame.metadata] == list(range(7))
    models = inspection.models_frame(registry, count_versions=True)
    assert models.set_index("model").loc[name, "versions"] == 7
    assert list(models["model"]) == sorted(models["model"])


def test_artifacts_frame(model):
    registry, name = model
    arts = inspection.artifacts_frame(registry, name)
    assert list(arts.version) == [f"v{i}" for i in range(7)]
    assert set(arts.format) == {"onnx"} and list(arts.uri) == [f"s3://b/{i}" for i in range(7)]
    assert inspection.artifacts_frame(registry, "no-such-model").empty


def test_lineage_of_links_to_the_run(model, stack):
    registry, name = model
    local = inspection.lineage_of(registry, name, "v4", stack)
    assert (local["run_id"], local["run_name"], local["kind"], local["class"]) == ("r1", "run-1", "kfp", "pipelinerun")
    assert local["link"] is None  # not a run this machine's submit() made
    cluster = Settings(backend="cluster", kfp_ui_url="http://kfp.example", state_dir=stack.state_dir)
    assert inspection.lineage_of(registry, name, "v4", cluster)["link"] == "http://kfp.example/#/runs/details/r1"
    with pytest.raises(InvalidInput, match="v99"):
        inspection.lineage_of(registry, name, "v99", stack)


def test_lineage_graph_draws_every_version_and_run(model, tmp_path):
    registry, name = model
    fig = inspection.lineage_graph(registry, name)
    texts = {t.get_text() for t in fig.figure.axes[0].texts}
    assert fig._repr_png_().startswith(b"\x89PNG")
    assert {f"v{i}" for i in range(7)} <= texts
    assert {"run r0\nrun-0", "run r1\nrun-1", "run r2\nrun-2"} <= texts
    for ext in ("png", "svg"):
        fig.savefig(tmp_path / f"g.{ext}")
        assert (tmp_path / f"g.{ext}").stat().st_size > 1000


def test_stage_keeps_one_production_version(model):
    registry, name = model
    assert production_version(registry, name) is None
    set_stage(registry, name, "v1", "production")
    change = set_stage(registry, name, "v2", "production", demote_to="archived")
    assert change.demoted == ("v1",)
    frame = versions_frame(registry, name).set_index("version")
    assert (frame.stage == "production").sum() == 1 and production_version(registry, name) == "v2"
    assert (frame.loc["v1", "stage"], frame.loc["v1", "state"]) == ("candidate", "ARCHIVED")
    with pytest.raises(InvalidInput, match="restore"):
        set_stage(registry, name, "v1", "production")
    with pytest.raises(InvalidInput, match="'candidate' or 'production'"):
        set_stage(registry, name, "v3", "staging")


def test_archive_and_restore(model):
    registry, name = model
    assert archive_version(registry, name, "v5") == "ARCHIVED"
    assert versions_frame(registry, name).set_index("version").loc["v5", "state"] == "ARCHIVED"
    assert restore_version(registry, name, "v5") == "LIVE"
    with pytest.raises(InvalidInput):
        archive_version(registry, name, "nope")
