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

UI = Path(__file__).resolve().parents[2] / "setup" / "ui"
sys.path.insert(0, str(UI))

import screenshot  # noqa: E402 - setup/ui/screenshot.py
import server  # noqa: E402 - setup/ui/server.py

MODEL = "tutorial-classifier"
SHOTS = Path(__file__).resolve().parents[2] / "build" / "test-ui"


@pytest.fixture(scope="session")
def ui(tmp_path_factory: pytest.TempPathFactory, monkeypatch_session):
    """The UI server's record (pid, url) and what the test registered; everything stopped by pid at the end."""
    if not (server.dist_dir() / "index.html").is_file():
        pytest.fail(f"The Model Registry UI is not built ({server.dist_dir()}): run `make ui-build` (or `make test`).")
    state_dir = tmp_path_factory.mktemp("ui-stack")
    monkeypatch_session.setenv("MRH_STATE_DIR", str(state_dir))
    base = stack_settings(state_dir)
    try:
        assert localstack.up(base, auth=True, quiet=True).ok
        settings = mh.Settings.from_env(state_dir=state_dir, author="ui-tests")
        registry = mh.connect(settings)
        run_id = str(uuid.uuid4())
        lineage = mh.Lineage.for_kfp_run(run_id, "train-gate-promote-ui", "local")
        versions = {}
        for version, accuracy in (("v1", 0.9561), ("v2", 0.9737)):
            versions[version] = mh.register_version(
                registry, MODEL, version, f"file://{state_dir}/runs/{version}/model.joblib",
                model_format_name="sklearn", model_format_version="1", lineage=lineage,
                metadata={"accuracy": accuracy, "dataset": "breast_cancer", "c": 1.0, "max_iter": 200},
                description=f"{MODEL} {version}, from the UI tier",
            )  # fmt: skip
        record = server.start(settings)
        yield {"settings": settings, "record": record, "run_id": run_id, "versions": versions}
    finally:
        server.stop(mh.Settings.from_env(state_dir=state_dir))
        localstack.down(base, quiet=True)


@pytest.fixture(scope="session")
def monkeypatch_session():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="session")
def browser(ui):
    with screenshot.chromium() as drv:
        SHOTS.mkdir(parents=True, exist_ok=True)
        yield drv
