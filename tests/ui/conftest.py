"""The ui tier's fixtures: a local stack behind the token-checking proxy, the tutorial's model registered
with KFP lineage, and the Model Registry UI (the real v0.2.22 frontend, our adapter) in front of it."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

import mrhelpers as mh
from mrhelpers import localstack
from tests.conftest import stack_settings
from tests.ui.pipeline import train_and_register_pipeline

UI = Path(__file__).resolve().parents[2] / "setup" / "ui"
sys.path.insert(0, str(UI))

import screenshot  # noqa: E402 - setup/ui/screenshot.py
import server  # noqa: E402 - setup/ui/server.py

MODEL = "tutorial-classifier"
SHOTS = Path(__file__).resolve().parents[2] / "build" / "test-ui"


@pytest.fixture(scope="session")
def ui(tmp_path_factory: pytest.TempPathFactory):
    """The UI server's record (pid, url) and what the test registered; everything stopped by pid at the end."""
    if not (server.dist_dir() / "index.html").is_file():
        pytest.fail(f"The Model Registry UI is not built ({server.dist_dir()}): run `make ui-build` (or `make test`).")
    state_dir = tmp_path_factory.mktemp("ui-stack")
    base = stack_settings(state_dir)
    try:
        assert localstack.up(base, auth=True, quiet=True).ok
        settings = mh.Settings.from_env(state_dir=state_dir, author="ui-tests")
        registry = mh.connect(settings)
        # v1 as a reader's own code registers it, then v2 from a real kfp.local run of notebook 06's pipeline.
        first = mh.register_version(
            registry, MODEL, "v1", f"file://{state_dir}/runs/v1/model.joblib",
            model_format_name="sklearn", model_format_version="1",
            lineage=mh.Lineage.for_kfp_run(str(uuid.uuid4()), "by-hand", "local"),
            metadata={"accuracy": 0.9561, "dataset": "breast_cancer"}, description=f"{MODEL} v1, from the UI tier",
        )  # fmt: skip
        run = mh.submit(
            train_and_register_pipeline,
            dict(model_name=MODEL, version_name="v2", author=settings.author,
                 registry_url=settings.component_registry_url, c=1.0),
            settings,
        ).wait(progress=False)  # fmt: skip
        assert run.state == "SUCCEEDED", run.error
        rows = mh.versions_frame(registry, MODEL).set_index("version")
        record = server.start(settings)
        yield {
            "settings": settings, "record": record, "model_id": first.model_id,
            "version_ids": {"v1": first.version_id, "v2": str(rows.loc["v2", "version_id"])},
            "run_id": str(rows.loc["v2", "source_id"]),  # the kfp.local run's id, as its task wrote it
        }  # fmt: skip
    finally:
        server.stop(mh.Settings.from_env(state_dir=state_dir))
        localstack.down(base, quiet=True)


@pytest.fixture(scope="session")
def browser(ui):
    with screenshot.chromium() as drv:
        SHOTS.mkdir(parents=True, exist_ok=True)
        yield drv
