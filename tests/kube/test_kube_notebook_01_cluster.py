"""Notebook 01 with backend="cluster", headless (papermill, as `setup/run_notebooks.py` runs it),
against the real API server: its Secret step runs against real Kubernetes. The notebook needs only a
kubeconfig and a namespace; the executed copy stays in the test's folder (kept on failure)."""

import base64

from run_notebooks import run_notebooks  # setup/run_notebooks.py

from mrhelpers import read_records


def test_notebook_01_creates_the_secret_in_the_namespace(core, namespace, kubeconfig, tmp_path, monkeypatch):
    """No token parameter: papermill writes parameters into the executed copy, so a token passed that way
    would be in it. The notebook chooses one itself; the test reads it back from the Secret."""
    monkeypatch.setenv("MRH_NAMESPACE", namespace)
    monkeypatch.setenv("MRH_STATE_DIR", str(tmp_path / "state"))
    for var in ("MRH_BACKEND", "MRH_TOKEN", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "executed"
    (result,) = run_notebooks(out, {"backend": "cluster"}, ["01_registry_secret"], quiet=True)
    assert result.status == "ok", result.error

    secret = core.read_namespaced_secret("model-registry-auth", namespace)
    assert set(secret.data) == {"token"} and secret.metadata.labels["app.kubernetes.io/managed-by"] == "mrhelpers"
    token = base64.b64decode(secret.data["token"]).decode()
    assert len(token) >= 32
    assert read_records(result.output)["secret_name"] == "model-registry-auth"
    executed = (out / "01_registry_secret.ipynb").read_text()
    assert f"{namespace}/model-registry-auth" in executed  # the SecretInfo the reader sees names where it went
    assert token not in executed and secret.data["token"] not in executed

    # Run again: the token the Secret holds is kept (read back from the cluster), not replaced by a new one.
    (again,) = run_notebooks(tmp_path / "again", {"backend": "cluster"}, ["01_registry_secret"], quiet=True)
    assert again.status == "ok", again.error
    assert core.read_namespaced_secret("model-registry-auth", namespace).data["token"] == secret.data["token"]
