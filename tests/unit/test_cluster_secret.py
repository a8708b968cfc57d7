"""ensure_secret for backend='cluster', at its boundary: the Kubernetes API over HTTP.

No cluster runs here, so the stub of tests/k8s_api_stub.py answers the Secret calls on 127.0.0.1 the
way the API server does (JSON bodies, base64 data, 403/404 statuses); the kubeconfig points at it.
"""

import base64

import pytest

from mrhelpers import MRHelpersError, Settings, ensure_secret
from tests.k8s_api_stub import KubeApi

TOKEN = "cluster-token-3f7a9c"
SECRET = "/api/v1/namespaces/kubeflow/secrets/model-registry-auth"


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    with KubeApi() as api:
        api.namespaces = {"kubeflow", "forbidden"}
        api.forbidden = {"forbidden"}
        monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path / "kubeconfig")))
        yield api


def settings(tmp_path, namespace="kubeflow"):
    return Settings(backend="cluster", namespace=namespace, state_dir=tmp_path)


def test_creates_then_updates_then_leaves_alone(cluster, tmp_path):
    info = ensure_secret(settings(tmp_path), "model-registry-auth", {"token": TOKEN})
    assert info.changed and info.where == "kubeflow/model-registry-auth" and info.keys == {"token": len(TOKEN)}
    stored = cluster.objects[SECRET]["data"]
    assert base64.b64decode(stored["token"]).decode() == TOKEN
    assert not ensure_secret(settings(tmp_path), "model-registry-auth", {"token": TOKEN}).changed
    assert ensure_secret(settings(tmp_path), "model-registry-auth", {"token": TOKEN + "2"}).changed
    assert base64.b64decode(cluster.objects[SECRET]["data"]["token"]).decode() == TOKEN + "2"
    assert [c[0] for c in cluster.calls] == ["GET", "POST", "GET", "GET", "PATCH"]
    assert TOKEN not in repr(info)


@pytest.mark.parametrize(
    ("namespace", "match"),
    [
        ("forbidden", "HTTP 403, RBAC.*kubectl auth can-i get secrets -n forbidden"),
        ("missing", "Namespace 'missing' does not exist.*kubectl create namespace"),
    ],
)
def test_refusals_name_the_cause_and_never_the_value(cluster, tmp_path, namespace, match):
    with pytest.raises(MRHelpersError, match=match) as info:
        ensure_secret(settings(tmp_path, namespace), "model-registry-auth", {"token": TOKEN})
    assert TOKEN not in str(info.value)


def test_no_cluster(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nothing-here"))
    with pytest.raises(MRHelpersError, match="kubectl cluster-info"):
        ensure_secret(settings(tmp_path), "model-registry-auth", {"token": TOKEN})
