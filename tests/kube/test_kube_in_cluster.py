"""Issue 17 (2): inside a pod (a Kubeflow Notebook) there is no kubeconfig; mrhelpers uses the pod's
ServiceAccount. Simulated against the real API server: a real ServiceAccount token (TokenRequest API,
signed by the server's key), its CA certificate and namespace in a folder laid out like
/var/run/secrets/kubernetes.io/serviceaccount (MRH_SERVICEACCOUNT_DIR points at it), and the
KUBERNETES_SERVICE_HOST/PORT variables a pod gets. RBAC decides with the account's real identity."""

import base64
import shutil

import pytest
from cluster_doctor import cluster_doctor
from kubernetes import client

from mrhelpers import MRHelpersError, Settings, ensure_secret
from tests.kube_api import grant_secrets

TOKEN = "in-cluster-token-91ab"  # noqa: S105


@pytest.fixture
def pod(control_plane, core, namespace, tmp_path, monkeypatch):
    """This process, as a pod of ServiceAccount "notebook" in ``namespace`` that may write Secrets there."""
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="notebook"))
    )
    grant_secrets(namespace, ["get", "create", "patch"],
                  client.RbacV1Subject(kind="ServiceAccount", name="notebook", namespace=namespace))  # fmt: skip
    issued = core.create_namespaced_service_account_token("notebook", namespace, client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)))  # fmt: skip
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(issued.status.token)
    shutil.copy(control_plane.ca_file, account / "ca.crt")
    (account / "namespace").write_text(namespace)
    monkeypatch.setenv("MRH_SERVICEACCOUNT_DIR", str(account))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(control_plane.port))
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.delenv("MRH_NAMESPACE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config either
    return namespace


def test_ensure_secret_uses_the_pods_service_account(pod, core, tmp_path):
    settings = Settings.from_env(backend="cluster", state_dir=tmp_path)
    assert settings.namespace == pod  # the pod's own namespace, from the ServiceAccount's namespace file
    assert settings.component_registry_url == f"http://model-registry-service.{pod}.svc.cluster.local:8080"
    info = ensure_secret(settings, "model-registry-auth", {"token": TOKEN})
    assert info.changed and info.where == f"{pod}/model-registry-auth"
    stored = core.read_namespaced_secret("model-registry-auth", pod)
    assert base64.b64decode(stored.data["token"]).decode() == TOKEN
    assert not ensure_secret(settings, "model-registry-auth", {"token": TOKEN}).changed


def test_the_accounts_identity_is_what_rbac_judges(pod, tmp_path):
    with pytest.raises(MRHelpersError, match=r"Not allowed to get Secret kube-system/model-registry-auth \(HTTP 403"):
        ensure_secret(Settings.from_env(backend="cluster", namespace="kube-system", state_dir=tmp_path),
                      "model-registry-auth", {"token": TOKEN})  # fmt: skip
    with pytest.raises(MRHelpersError, match=r"Cannot read the cluster .*ServiceAccount \(HTTP 403 Forbidden\)"):
        cluster_doctor(Settings.from_env(backend="cluster", state_dir=tmp_path))


def test_a_kubeconfig_still_wins_over_the_pods_account(pod, control_plane, tmp_path, monkeypatch):
    """kubectl's order: KUBECONFIG first. The admin kubeconfig may write to kube-system; the account may not."""
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig(tmp_path / "admin.kubeconfig")))
    settings = Settings.from_env(backend="cluster", namespace="kube-system", state_dir=tmp_path)
    assert ensure_secret(settings, "mrh-in-cluster-test", {"token": TOKEN}).where == "kube-system/mrh-in-cluster-test"
    client.CoreV1Api().delete_namespaced_secret("mrh-in-cluster-test", "kube-system")


def test_not_a_pod_and_no_kubeconfig(pod, tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(MRHelpersError, match="not a pod with a ServiceAccount token.*kubectl cluster-info"):
        ensure_secret(Settings(backend="cluster", namespace=pod, state_dir=tmp_path), "x", {"token": TOKEN})
