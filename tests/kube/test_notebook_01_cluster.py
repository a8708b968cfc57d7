"""Notebook 01 with backend="cluster", headless (papermill, as `python -m mrhelpers run-notebooks` runs it),
against the real API server: its Secret step runs against real Kubernetes. The notebook needs only a
kubeconfig and a namespace; the executed copy stays in the test's folder (kept on failure)."""

import base64

from mrhelpers import read_records
from mrhelpers.tutorial import run_notebooks

TOKEN = "nb01-cluster-token-5e2b7d"  # noqa: S105 - a test value whose absence from the outputs is checked


def test_notebook_01_creates_the_secret_in_the_namespace(core, namespace, kubeconfig, tmp_path, monkeypatch):
    monkeypatch.setenv("MRH_NAMESPACE", namespace)
    monkeypatch.setenv("MRH_STATE_DIR", str(tmp_path / "state"))
    for var in ("MRH_BACKEND", "MRH_TOKEN", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "executed"
    (result,) = run_notebooks(out, {"backend": "cluster", "token": TOKEN}, ["01_registry_secret"], quiet=True)
    assert result.status == "ok", result.error

    secret = core.read_namespaced_secret("model-registry-auth", namespace)
    assert {k: base64.b64decode(v).decode() for k, v in secret.data.items()} == {"token": TOKEN}
    assert secret.metadata.labels["app.kubernetes.io/managed-by"] == "mrhelpers"
    assert read_records(result.output)["secret_name"] == "model-registry-auth"
    executed = (out / "01_registry_secret.ipynb").read_text()
    assert f"{namespace}/model-registry-auth" in executed  # the SecretInfo the reader sees names where it went
    assert TOKEN not in executed and base64.b64encode(TOKEN.encode()).decode() not in executed

    (again,) = run_notebooks(out, {"backend": "cluster", "token": TOKEN}, ["01_registry_secret"], quiet=True)
    assert again.status == "ok", again.error
    assert core.read_namespaced_secret("model-registry-auth", namespace).metadata.resource_version == \
        secret.metadata.resource_version  # a re-run changes nothing  # fmt: skip
