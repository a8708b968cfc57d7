"""Issue 24: a frame or a look-up reads what it answers, not the whole registry.

The server's own access log says which requests each call made; a wrapper around the session's
``request`` counts the versions each listing returned. The server and the database are real.
"""

import re
import uuid

import pytest
from kfp.local.executor_input_utils import get_local_pipeline_resource_name
from model_registry.types import RegisteredModel

from benchmarks.run import seed
from mrhelpers import Lineage, artifacts_frame, connect, find_versions, models_frame, register_version
from mrhelpers.authoring.handles import RunHandle, remember
from mrhelpers.backends.local import LocalBackend
from mrhelpers.core.rest import RegistrySession, session_for

FMT = dict(model_format_name="onnx", model_format_version="1")


def logged(settings):
    """The request lines the registry server has logged so far."""
    log = settings.state_dir / "logs" / "model-registry.log"
    return [line for line in log.read_text(errors="replace").splitlines() if '"GET http' in line]


@pytest.fixture(scope="module")
def crowded(stack):
    """600 versions of three models that no question here asks about."""
    registry = connect(stack)
    session = session_for(registry)
    for m in range(3):
        name = f"other-{uuid.uuid4().hex[:6]}"
        model = session.save_model(RegisteredModel(name=name, owner=session.author))
        seed(session, model.id, name, [f"v{i}" for i in range(200)], lambda i: f"other-run-{i}")
    return registry


def test_models_frame_lists_no_version_unless_counts_are_asked_for(stack, crowded):
    name = f"count-{uuid.uuid4().hex[:6]}"
    for v in range(3):
        register_version(crowded, name, f"v{v}", f"s3://b/{v}", **FMT)
    before = len(logged(stack))
    models = models_frame(crowded)
    asked = logged(stack)[before:]
    assert "versions" not in models.columns and name in set(models.model)
    assert asked and not [line for line in asked if "versions" in line], asked
    counted = models_frame(crowded, count_versions=True).set_index("model")
    assert counted.loc[name, "versions"] == 3 and (counted.versions >= 200).sum() >= 3


def _listing_counter(monkeypatch):
    """Counts the versions each version listing returns, and the per-model listings."""
    listed = {"versions": 0, "per_model": 0}
    real = RegistrySession.request

    def counting(self, method, path, params=None, body=None, **kw):
        answer = real(self, method, path, params, body, **kw)
        if path.endswith("/versions") or path.endswith("/model_versions"):
            listed["versions"] += len((answer if isinstance(answer, dict) else {}).get("items") or [])
            listed["per_model"] += path.startswith("/registered_models/")
        return answer

    monkeypatch.setattr(RegistrySession, "request", counting)
    return listed


def test_find_versions_for_a_recorded_run_reads_only_what_was_written_since_it_started(
    stack, crowded, monkeypatch, tmp_path
):
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    recorded = stack.replace(state_dir=tmp_path / "recorded")  # a run history of this test's own
    remember(recorded, RunHandle("local", "p", "SUCCEEDED", {}, run_id, "run", None, seconds=0.0), {})
    lineage = Lineage.for_kfp_run(run_id, "run", "ns")
    for m in range(2):
        register_version(crowded, f"ran-{run_id}-{m}", "v1", f"s3://b/{m}", lineage=lineage, **FMT)
    # Another tool's registration of the same run: the run id on the artifact only, so it is read.
    crowded.register_model(f"ran-{run_id}-plain", "s3://b/p", version="p1", model_source_id=run_id, **FMT)

    listed = _listing_counter(monkeypatch)
    before = len(logged(stack))
    found = find_versions(crowded, run_id=run_id, settings=recorded)
    asked = logged(stack)[before:]
    read = listed["versions"]
    since = recorded.backend_impl().run_started(recorded, run_id)
    everything = session_for(crowded).versions()
    written_since = sum(int(v.create_time_since_epoch) >= since for v in everything)
    assert sorted(found.model) == sorted(f"ran-{run_id}-{s}" for s in ("0", "1", "plain"))
    assert not [
        line for line in asked if "/registered_models?" in line or re.search(r"/registered_models/\d+/ver", line)
    ]
    # Pages of 20, 80, 320 ... newest first, until one reaches back before the run's start.
    assert read <= 4 * written_since + 20, (read, written_since, len(everything))

    # The same rows as listing every model's versions, for a run the history does not know.
    full = find_versions(crowded, run_id=run_id, settings=stack.replace(state_dir=tmp_path / "empty"))
    assert found.equals(full), found.compare(full)


def test_find_versions_dates_a_kfp_local_run_by_its_name(stack, crowded, monkeypatch, tmp_path):
    """A run started with kfp.local by hand is in no run history; kfp.local names it after its start."""
    settings = stack.replace(state_dir=tmp_path / "no-history")
    run_id, run_name = uuid.uuid4().hex[:8], get_local_pipeline_resource_name("my-pipeline")
    lineage = Lineage.for_kfp_run(run_id, run_name, "local")
    register_version(crowded, f"kl-{run_id}-0", "v1", "s3://b/0", lineage=lineage, **FMT)
    # What the reader's own component writes: the client's register_model, the run on the artifact only.
    crowded.register_model(f"kl-{run_id}-plain", "s3://b/p", version="p1", model_source_id=run_id,
                           model_source_name=run_name, **FMT)  # fmt: skip
    everything = session_for(crowded).versions()
    start = LocalBackend().run_started(settings, run_id, run_name)
    written_since = sum(int(v.create_time_since_epoch) >= start for v in everything)

    listed = _listing_counter(monkeypatch)
    found = find_versions(crowded, run_id=run_id, settings=settings)
    assert sorted(found.model) == [f"kl-{run_id}-0", f"kl-{run_id}-plain"]
    assert listed["per_model"] == 0 and listed["versions"] <= 20 + 4 * written_since + 20, (listed, written_since)

    # The same rows as listing every model's versions, which is what a backend that cannot date it does.
    monkeypatch.setattr(LocalBackend, "run_started", lambda self, settings, run_id, run_name=None: None)
    listed["per_model"] = 0
    full = find_versions(crowded, run_id=run_id, settings=settings)
    assert listed["per_model"] >= 3 and found.equals(full), found.compare(full)


@pytest.mark.parametrize(
    "run_name",
    [
        "p-2999-01-01-00-00-00-000000",  # dated after the version was written: not a start, so not believed
        "p-2026-13-45-99-99-99-000000",  # digits in kfp.local's shape, but no date
        "p-9999-12-31-23-59-59-999999",
        "a run named by hand",
    ],
)
def test_find_versions_lists_everything_when_the_name_is_no_start(stack, crowded, monkeypatch, tmp_path, run_name):
    settings = stack.replace(state_dir=tmp_path / "no-history")
    run_id = uuid.uuid4().hex[:8]
    lineage = Lineage.for_kfp_run(run_id, run_name, "local")
    register_version(crowded, f"kx-{run_id}", "v0", "s3://b/old", lineage=Lineage.for_kfp_run(run_id, "x", "local"),
                     **FMT)  # fmt: skip
    register_version(crowded, f"kx-{run_id}", "v1", "s3://b/1", lineage=lineage, **FMT)
    listed = _listing_counter(monkeypatch)
    found = find_versions(crowded, run_id=run_id, settings=settings)
    assert list(found.version) == ["v0", "v1"] and listed["per_model"] >= 3, listed


def test_find_versions_lists_everything_when_the_run_is_not_among_the_newest(stack, crowded, monkeypatch, tmp_path):
    settings = stack.replace(state_dir=tmp_path / "no-history")
    run_id, run_name = uuid.uuid4().hex[:8], get_local_pipeline_resource_name("my-pipeline")
    register_version(crowded, f"kn-{run_id}", "v1", "s3://b/1", lineage=Lineage.for_kfp_run(run_id, run_name, "local"),
                     **FMT)  # fmt: skip
    session = session_for(crowded)
    model = session.save_model(RegisteredModel(name=f"kn-later-{run_id}", owner=session.author))
    seed(session, model.id, model.name, [f"v{i}" for i in range(25)], lambda i: f"later-{i}")
    listed = _listing_counter(monkeypatch)
    found = find_versions(crowded, run_id=run_id, settings=settings)
    assert list(found.model) == [f"kn-{run_id}"] and listed["per_model"] >= 3, listed


def test_artifacts_frame_of_one_model_reads_that_model_only(stack, crowded):
    name = f"arts-{uuid.uuid4().hex[:6]}"
    register_version(crowded, name, "v1", "s3://b/1", **FMT)
    before = len(logged(stack))
    arts = artifacts_frame(crowded, name)
    asked = logged(stack)[before:]
    assert list(arts.uri) == ["s3://b/1"] and len(asked) == 3, asked  # the model, its versions, one artifact
