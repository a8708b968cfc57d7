"""What runs inside a task: the namespace it finds, and the one options object its inputs become."""

import dataclasses

import pytest

from mrhelpers import Settings
from mrhelpers.authoring.components import register_model
from mrhelpers.authoring.in_task import RunRegistration, resolve_namespace

pytestmark = pytest.mark.unit


def test_the_registration_object_holds_exactly_the_components_inputs():
    fields = {f.name for f in dataclasses.fields(RunRegistration)}
    assert fields == set(register_model.component_spec.inputs) and len(fields) == 13


def test_a_task_finds_the_namespace_as_settings_do(tmp_path, monkeypatch):
    """Given, else POD_NAMESPACE, else the pod's ServiceAccount (MRH_SERVICEACCOUNT_DIR), else local."""
    for key in ("POD_NAMESPACE", "KUBERNETES_SERVICE_HOST", "MRH_NAMESPACE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MRH_STATE_DIR", str(tmp_path / "state"))
    assert resolve_namespace() == "local"
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("pod-token")
    (account / "namespace").write_text("team-a\n")
    monkeypatch.setenv("MRH_SERVICEACCOUNT_DIR", str(account))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    assert resolve_namespace() == "team-a" == Settings.from_env(backend="cluster").namespace
    monkeypatch.setenv("POD_NAMESPACE", "team-b")
    assert resolve_namespace() == "team-b" and resolve_namespace("team-c") == "team-c"
