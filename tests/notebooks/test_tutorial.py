"""Run notebooks 00-05 headless on the local backend, then check the registry and the records."""

import json
from pathlib import Path

import pytest

from mrhelpers import connect, find_versions, localstack, read_records, versions_frame
from mrhelpers.settings import Settings, default_bin_dir
from mrhelpers.tutorial import TUTORIAL, run_notebooks

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "test-notebooks"


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory):
    """The six executed notebooks and the settings of the stack notebook 00 started."""
    import os

    state = tmp_path_factory.mktemp("tutorial-state")
    saved = {
        k: os.environ.get(k)
        for k in ("MRH_STATE_DIR", "MRH_REGISTRY_PORT", "MRH_DB_PORT", "MRH_REGISTRY_URL", "MRH_TOKEN")
    }
    os.environ["MRH_STATE_DIR"] = str(state)
    for key in saved:
        if key != "MRH_STATE_DIR":
            os.environ.pop(key, None)
    settings = Settings(state_dir=state, bin_dir=default_bin_dir())
    try:
        results = run_notebooks(OUT, {"backend": "local"}, quiet=True)
        yield results, Settings.from_env(state_dir=state)
    finally:
        localstack.down(settings, quiet=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_all_notebooks_ran(tutorial):
    results, _ = tutorial
    failed = [f"{r.notebook}: {r.error} (see {r.output})" for r in results if r.status != "ok"]
    assert not failed, failed
    assert [r.notebook for r in results] == list(TUTORIAL)
    assert all(Path(r.output).is_file() for r in results)
    assert json.loads((OUT / "summary.json").read_text())[-1]["status"] == "ok"


def test_registered_version_has_lineage_to_the_recorded_run(tutorial):
    _, settings = tutorial
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
    assert comp["created"] is True and comp["version_name"] == "v0.1.0"


def test_no_notebook_shows_the_token(tutorial):
    _, settings = tutorial
    token = settings.token.reveal()
    assert len(token) >= 16
    for name in TUTORIAL:
        assert token not in (OUT / f"{name}.ipynb").read_text(), f"{name} shows the token"


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
