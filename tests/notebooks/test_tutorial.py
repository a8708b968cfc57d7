"""Notebooks 00-07 run headless (twice) on the local backend: check the registry and the records."""

import json
import re
from pathlib import Path

import localstack  # setup/localstack.py
from run_notebooks import CLEANUP, TUTORIAL, run_notebooks

from mrhelpers import connect, find_versions, models_frame, read_records, versions_frame
from tests.notebooks.conftest import OUT, ROOT, TOKEN


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
    # the copy the reader's component writes where the Model Registry UI shows it (notebook 05, step 8)
    version = registry.get_model_version(rec["model_name"], rec["version_name"])
    shown = {"pipeline_run_id": rec["run_id"], "pipeline_run_name": rec["run_name"]}
    assert version.custom_properties.items() >= shown.items()


def test_notebook_05_found_the_run_of_notebook_04(tutorial):
    rec04 = read_records(OUT / "04_submit_run.ipynb")
    rec05 = read_records(OUT / "05_inspect_registry.ipynb")
    assert (rec05["newest_version"], rec05["newest_run_id"]) == (rec04["version_name"], rec04["run_id"])
    assert [(f["version"], f["source_id"]) for f in rec05["found_versions"]] == [
        (rec04["version_name"], rec04["run_id"])
    ]


def test_notebook_04_ran_the_package_03_compiled_from_the_readers_component(tutorial):
    """The thread: 02's component -> 03's pipeline and compile -> 04's kfp.local run -> the registry."""
    import hashlib

    import yaml

    rec02, rec03, rec04 = (read_records(OUT / f"{n}.ipynb") for n in TUTORIAL[2:5])
    assert rec03["component_sha256"] == rec02["component_sha256"]  # 03 loaded the file 02 saved
    assert (rec04["package_path"], rec04["package_sha256"]) == (rec03["package_path"], rec03["package_sha256"])
    package = Path(rec03["package_path"])
    assert hashlib.sha256(package.read_bytes()).hexdigest() == rec03["package_sha256"]
    component = yaml.safe_load(Path(rec02["component_path"]).read_text())
    spec = next(yaml.safe_load_all(package.read_text()))
    (executor,) = component["deploymentSpec"]["executors"].values()
    assert spec["deploymentSpec"]["executors"]["exec-register-from-scratch"] == executor  # the reader's code
    assert "def register_from_scratch(" in "".join(executor["container"]["command"])
    assert rec04["tasks"] == ["register-from-scratch"]  # what the run printed: the reader's task, nothing else


def test_notebook_01_shows_401_without_the_token(tutorial):
    nb = json.loads((OUT / "01_registry_secret.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "without the token: HTTP 401; with it: HTTP 200" in printed


NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}
TASK_LINE = re.compile(r"^  (\S+)\s+(SUCCEEDED|FAILED|SKIPPED)\s", flags=re.M)


def stated_task_counts(text: str) -> set[int]:
    counts = re.findall(r"\b(\d+|" + "|".join(NUMBERS) + r") tasks?\b", text, flags=re.I)
    return {NUMBERS.get(c.lower()) or int(c) for c in counts}


def test_stated_task_counts_match_what_the_runs_printed(tutorial):
    """A sentence that says how many tasks the reader sees is checked against the task lines of the runs next to it
    (the code cell just before or just after it)."""
    checked = 0
    for folder in (OUT / "first-run", OUT):
        for name in TUTORIAL:
            cells = json.loads((folder / f"{name}.ipynb").read_text())["cells"]
            for i, cell in enumerate(cells):
                stated = stated_task_counts("".join(cell["source"])) if cell["cell_type"] == "markdown" else set()
                if not stated:
                    continue
                shown = []
                for near in (cells[i - 1], cells[i + 1] if i + 1 < len(cells) else cells[i - 1]):
                    printed = "".join("".join(o.get("text", "")) for o in near.get("outputs", []))
                    shown += [len(TASK_LINE.findall(printed))] if TASK_LINE.search(printed) else []
                where = f"{folder.name}/{name}, cell {i}"
                assert shown and set(shown) <= stated, f"{where}: the text says {sorted(stated)} tasks, runs: {shown}"
                checked += 1
    assert checked >= 8  # 04 once and 06 three times, in both runs


def test_stated_task_counts_reads_numbers():
    assert stated_task_counts("you should see six tasks, all SUCCEEDED; later four tasks, not 6 tasks") == {6, 4}
    assert stated_task_counts("one task, `register-model`") == {1}


def test_earlier_notebooks_recorded_their_results(tutorial):
    assert read_records(OUT / "01_registry_secret.ipynb")["token_set"] is True
    assert set(read_records(OUT / "03_compile_pipeline.ipynb")["lineage_placeholders"]) == {
        "{{$.pipeline_job_uuid}}",
        "{{$.pipeline_job_name}}",
    }
    comp = read_records(OUT / "02_component_authoring.ipynb")["component_outputs"]
    assert comp["created"] is True and comp["version_name"] == "v0.1.0-2"  # the second run bumps
    assert read_records(OUT / "02_component_authoring.ipynb")["retry_created"] is False
    rec01 = read_records(OUT / "01_registry_secret.ipynb")
    assert (rec01["http_without_token"], rec01["http_with_token"]) == (401, 200)  # the proxy checks the token
    warned = read_records(OUT / "03_compile_pipeline.ipynb")["blog_lineage_warnings"]
    assert len(warned) == 3 and any("KFP_RUN_ID" in w for w in warned) and any("{{workflow.uid}}" in w for w in warned)
    hub = read_records(OUT / "05_inspect_registry.ipynb")["hub_versions"]
    first04, second04 = (read_records(f / "04_submit_run.ipynb")["version_name"] for f in (OUT / "first-run", OUT))
    assert hub == sorted([first04, second04])  # kubeflow.hub read what the reader's runs of 04 registered


def test_the_token_was_used_and_never_shown(tutorial):
    _, _, settings = tutorial
    assert settings.token.reveal() == TOKEN and settings.registry_url == localstack.status(settings).registry_url
    assert [c.name for c in localstack.status(settings).components if c.answers] == ["mariadb", "registry", "proxy"]
    places = [*OUT.rglob("*.ipynb"), *OUT.rglob("*.json"), *(ROOT / "build" / "pipelines").rglob("*.yaml")]
    places += [p for p in settings.state_dir.rglob("*") if p.is_file() and "secrets" not in p.parts]
    assert len(places) > 20  # notebooks, summaries, compiled YAML, logs, run folders, artifact metadata
    leaks = [str(p) for p in places if TOKEN.encode() in p.read_bytes()]
    assert not leaks, leaks


def test_two_runs_leave_the_expected_registry(tutorial):
    _, _, settings = tutorial
    registry = connect(settings)
    models = models_frame(registry, count_versions=True).set_index("model")["versions"].to_dict()
    # per pass: 02 one from-scratch version and one half-made on purpose (pitfall 7), one packaged;
    # 04 one run of the reader's package with kfp.local and one mh.submit; 06 nothing new the second time
    assert models == {"tutorial-scratch": 4, "tutorial-component-check": 2, "tutorial-regressor": 2,
                      "tutorial-regressor-packaged": 2, "tutorial-classifier": 2}  # fmt: skip
    assert list(versions_frame(registry, "tutorial-regressor-packaged").version) == ["v1.0.0", "v1.0.0-2"]
    assert registry.get_registered_model("tutorial-classifier-gate-check") is None  # the impossible gate stayed shut


def test_notebook_04_shows_a_rerun_is_safe(tutorial):
    assert read_records(OUT / "04_submit_run.ipynb")["rerun_created"] is False


def test_notebook_05_follows_a_version_back_to_its_run(tutorial):
    _, _, settings = tutorial
    rec04 = read_records(OUT / "04_submit_run.ipynb")
    origin = read_records(OUT / "05_inspect_registry.ipynb")["lineage_of_newest"]
    assert (origin["version"], origin["run_id"], origin["run_name"]) == (
        rec04["version_name"],
        rec04["run_id"],
        rec04["run_name"],
    )
    assert origin["link"] is None  # the reader ran it with kfp.local directly: the folder is named after the run
    assert (Path(settings.pipeline_root) / rec04["run_name"]).is_dir()


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
    assert best.metadata["code_version"].startswith("training.py@")  # the training code's version
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


def test_cleanup_notebook_archives_the_tutorial_and_stops_the_stack(tutorial):
    """Notebook 99 on the tutorial's registry. Afterwards the test starts the stack again and puts back the
    states and stages it found, so no other test depends on running before this one."""
    from model_registry.types import RegisteredModelState

    from mrhelpers import production_version, restore_version, set_stage

    _, _, settings = tutorial
    registry = connect(settings)
    names = ["tutorial-component-check", "tutorial-regressor", "tutorial-regressor-packaged", "tutorial-classifier"]
    names.append("tutorial-scratch")
    found = {n: versions_frame(registry, n)[["version", "state", "stage"]].fillna("").to_dict("records") for n in names}
    production = {n: production_version(registry, n) for n in names}

    results = run_notebooks(OUT, {"backend": "local"}, names=[CLEANUP], quiet=True)
    assert results[0].status == "ok", results[0].error
    rec = read_records(OUT / f"{CLEANUP}.ipynb")
    assert rec["stack_ok_after_cleanup"] is False and not localstack.status(settings).ok
    archived = {r["model"]: sorted(r["archived_versions"]) for r in rec["archived"]}
    assert len(archived.pop("tutorial-scratch")) == 4
    readers = sorted(read_records(f / "04_submit_run.ipynb")["version_name"] for f in (OUT / "first-run", OUT))
    assert archived == {
        "tutorial-component-check": ["v0.1.0", "v0.1.0-2"],
        "tutorial-regressor": readers,
        "tutorial-regressor-packaged": ["v1.0.0", "v1.0.0-2"],
        "tutorial-classifier": ["lr-strong", "lr-weak"],
    }
    localstack.up(settings, quiet=True)  # the data survived; everything is archived now
    registry = connect(settings)
    for name in names:
        assert set(versions_frame(registry, name).state) == {"ARCHIVED"}
        assert models_frame(registry).set_index("model").loc[name, "state"] == "ARCHIVED"

    for name in names:  # put back what the other tests read
        model = registry.get_registered_model(name)
        model.state = RegisteredModelState.LIVE
        registry.update(model)
        for row in found[name]:
            if row["state"] == "LIVE":
                restore_version(registry, name, row["version"])
        if production[name]:
            set_stage(registry, name, production[name], "production")
    for name in names:
        assert (
            versions_frame(registry, name)[["version", "state", "stage"]].fillna("").to_dict("records") == found[name]
        )
        assert models_frame(registry).set_index("model").loc[name, "state"] == "LIVE"


STREAM_BUDGET = 40


def test_no_notebook_prints_more_than_the_stream_budget(tutorial):
    """kfp.local's executor logs go to files: a reader sees one line per task, not hundreds."""
    counted = {}
    for folder in (OUT / "first-run", OUT):
        for path in sorted(folder.glob("*.ipynb")):
            nb = json.loads(path.read_text())
            lines = sum(len("".join(o["text"]).splitlines()) for c in nb["cells"] for o in c.get("outputs", [])
                        if o.get("output_type") == "stream")  # fmt: skip
            counted[f"{folder.name}/{path.stem}"] = lines
    assert len(counted) >= 2 * len(TUTORIAL)
    over = {k: v for k, v in counted.items() if v > STREAM_BUDGET}
    assert not over, over


def test_reader_calls_ran_in_the_executed_notebooks(tutorial):
    """The calls of issue 11's table ran: their cells have an execution count and no error."""
    from tests.unit.tutorial.test_notebook_structure import READER_CALLS

    ran = {call: 0 for call in READER_CALLS}
    for name in TUTORIAL:
        nb = json.loads((OUT / f"{name}.ipynb").read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] != "code" or not cell.get("execution_count"):
                continue
            assert not [o for o in cell.get("outputs", []) if o.get("output_type") == "error"], name
            for call, pattern in READER_CALLS.items():
                ran[call] += bool(re.search(pattern, "".join(cell["source"])))
    assert all(ran.values()), {k: v for k, v in ran.items() if not v}
