"""Run notebooks 00-05 headless on the local backend, then check the registry and the records."""

import json
from pathlib import Path

import pytest

from mrhelpers import connect, ensure_secret, find_versions, localstack, models_frame, read_records, versions_frame
from mrhelpers.settings import Settings, default_bin_dir
from mrhelpers.tutorial import TUTORIAL, run_notebooks

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "test-notebooks"


TOKEN = "tutorial-known-token-5f0c9e8a1b2d"


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory):
    """The tutorial run twice, with a token-checking proxy in front of the registry and a known token.

    Returns the second run's results and the settings of the stack notebook 00 started.
    """
    import os

    state = tmp_path_factory.mktemp("tutorial-state")
    keys = ("MRH_STATE_DIR", "MRH_AUTH", "MRH_REGISTRY_PORT", "MRH_DB_PORT", "MRH_REGISTRY_URL", "MRH_TOKEN")
    saved = {k: os.environ.get(k) for k in keys}
    for key in keys:
        os.environ.pop(key, None)
    os.environ["MRH_STATE_DIR"] = str(state)
    os.environ["MRH_AUTH"] = "1"
    settings = Settings(state_dir=state, bin_dir=default_bin_dir())
    ensure_secret(settings, settings.secret_name, {"token": TOKEN})
    try:
        first = run_notebooks(OUT / "first-run", {"backend": "local"}, quiet=True)
        second = run_notebooks(OUT, {"backend": "local"}, quiet=True)
        yield first, second, Settings.from_env(state_dir=state)
    finally:
        localstack.down(settings, quiet=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_all_notebooks_ran_twice(tutorial):
    first, results, _ = tutorial
    failed = [f"first run: {r.notebook}: {r.error} (see {r.output})" for r in first if r.status != "ok"]
    assert not failed, failed
    failed = [f"{r.notebook}: {r.error} (see {r.output})" for r in results if r.status != "ok"]
    assert not failed, failed
    assert [r.notebook for r in results] == list(TUTORIAL)
    assert all(Path(r.output).is_file() for r in results)
    assert json.loads((OUT / "summary.json").read_text())[-1]["status"] == "ok"


def test_registered_version_has_lineage_to_the_recorded_run(tutorial):
    _, _, settings = tutorial
    rec = read_records(OUT / "04_submit_run.ipynb")
    registry = connect(settings)
    frame = versions_frame(registry, rec["model_name"])
    row = frame[frame.version == rec["version_name"]].iloc[0]
    assert row.version_id == rec["version_id"]
    assert (row.source_kind, row.source_class, row.source_id) == ("kfp", "pipelinerun", rec["run_id"])
    assert row.source_name == rec["run_name"] and row.source_group == "local"
    found = find_versions(registry, run_id=rec["run_id"])
    assert list(found.version) == [rec["version_name"]]


def test_notebook_05_found_the_run_of_notebook_04(tutorial):
    rec04 = read_records(OUT / "04_submit_run.ipynb")
    rec05 = read_records(OUT / "05_inspect_registry.ipynb")
    assert [(f["version"], f["source_id"]) for f in rec05["found_versions"]] == [
        (rec04["version_name"], rec04["run_id"])
    ]


def test_earlier_notebooks_recorded_their_results(tutorial):
    assert read_records(OUT / "01_registry_secret.ipynb")["token_set"] is True
    assert set(read_records(OUT / "03_compile_pipeline.ipynb")["lineage_placeholders"]) == {
        "{{$.pipeline_job_uuid}}",
        "{{$.pipeline_job_name}}",
    }
    comp = read_records(OUT / "02_component_authoring.ipynb")["component_outputs"]
    assert comp["created"] is True and comp["version_name"] == "v0.1.0-2"  # the second run bumps


def test_the_token_was_used_and_never_shown(tutorial):
    _, _, settings = tutorial
    assert settings.token.reveal() == TOKEN and settings.registry_url == localstack.status(settings).registry_url
    assert [c.name for c in localstack.status(settings).components if c.answers] == ["mariadb", "registry", "proxy"]
    places = [*OUT.rglob("*.ipynb"), *OUT.rglob("*.json"), *(ROOT / "build" / "pipelines").rglob("*.yaml")]
    places += [
        p for p in settings.state_dir.rglob("*") if p.is_file() and "secrets" not in p.parts and p.name != "nginx.conf"
    ]
    assert len(places) > 20  # notebooks, summaries, compiled YAML, logs, run folders, artifact metadata
    leaks = [str(p) for p in places if TOKEN.encode() in p.read_bytes()]
    assert not leaks, leaks


def test_two_runs_leave_the_expected_registry(tutorial):
    _, _, settings = tutorial
    registry = connect(settings)
    models = models_frame(registry).set_index("model")["versions"].to_dict()
    assert models == {"tutorial-component-check": 2, "tutorial-regressor": 2, "tutorial-classifier": 2}
    assert list(versions_frame(registry, "tutorial-regressor").version) == ["v1.0.0", "v1.0.0-2"]


def test_notebook_04_shows_a_rerun_is_safe(tutorial):
    assert read_records(OUT / "04_submit_run.ipynb")["rerun_created"] is False


def test_notebook_05_follows_a_version_back_to_its_run(tutorial):
    rec04 = read_records(OUT / "04_submit_run.ipynb")
    origin = read_records(OUT / "05_inspect_registry.ipynb")["lineage_of_newest"]
    assert (origin["version"], origin["run_id"], origin["run_name"]) == (
        rec04["version_name"],
        rec04["run_id"],
        rec04["run_name"],
    )
    assert origin["link"].startswith("file://") and origin["link"].endswith(rec04["run_name"])


def test_notebook_05_shows_the_lineage_figure(tutorial):
    nb = json.loads((OUT / "05_inspect_registry.ipynb").read_text())
    images = [o for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 1 and len(images[0]["data"]["image/png"]) > 5000


def test_notebook_06_keeps_one_production_version_and_gates(tutorial):
    _, _, settings = tutorial
    rec = read_records(OUT / "06_train_gate_promote.ipynb")
    assert rec["gated_version_registered"] is False
    registry = connect(settings)
    frame = versions_frame(registry, "tutorial-classifier")
    production = frame[frame.stage == "production"]
    assert len(production) == 1 and list(production.version) == rec["production_versions"]
    # first run: weak (first model, passes the threshold), then strong (beats it); the second run
    # of the notebook registers nothing: neither model beats production any more
    assert sorted(frame.version) == ["lr-strong", "lr-weak"]
    assert frame.set_index("version").loc["lr-weak", "stage"] == "candidate"
    assert not any(v.startswith("lr-gated") for v in frame.version)
    best = production.iloc[0]
    assert best.metadata["accuracy"] == max(m["accuracy"] for m in frame.metadata)
    assert best.metadata["dataset"] == "breast_cancer" and best.metadata["c"] == 1.0
    assert best.uri.startswith("file://") and best.source_kind == "kfp"


def test_notebook_07_served_model_matches_its_recorded_evaluation(tutorial):
    rec = read_records(OUT / "07_registry_to_serving.ipynb")
    assert rec["served_accuracy"] == rec["registered_accuracy"] > 0.9
    labels = rec["manifest_labels"]
    assert set(labels) == {"modelregistry/registered-model-id", "modelregistry/model-version-id"}


def test_notebook_06_shows_the_metric_figure(tutorial):
    nb = json.loads((OUT / "06_train_gate_promote.ipynb").read_text())
    images = [o for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 1 and len(images[0]["data"]["image/png"]) > 5000
