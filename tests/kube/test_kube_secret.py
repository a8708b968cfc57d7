"""ensure_secret for backend='cluster' against a real kube-apiserver: create, patch, no change, the
real 404 of a missing namespace, and RBAC's real 403 for a user whose Role does not let it write Secrets."""

import base64

import pytest
from kubernetes import client

from mrhelpers import MRHelpersError, Settings, ensure_secret
from tests.kube_api import LIMITED_TOKEN, LIMITED_USER, grant_secrets

TOKEN = "cluster-token-3f7a9c"
NAME = "model-registry-auth"


def settings(tmp_path, namespace):
    return Settings(backend="cluster", namespace=namespace, state_dir=tmp_path)


def stored(core, namespace, name=NAME):
    secret = core.read_namespaced_secret(name, namespace)
    return secret, {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


def test_creates_then_leaves_alone_then_patches(core, namespace, tmp_path):
    info = ensure_secret(settings(tmp_path, namespace), NAME, {"token": TOKEN})
    assert info.changed and info.where == f"{namespace}/{NAME}" and info.keys == {"token": len(TOKEN)}
    secret, values = stored(core, namespace)
    assert values == {"token": TOKEN} and secret.type == "Opaque"
    assert secret.metadata.labels == {"app.kubernetes.io/managed-by": "mrhelpers"}
    version = secret.metadata.resource_version

    again = ensure_secret(settings(tmp_path, namespace), NAME, {"token": TOKEN})
    assert not again.changed
    assert stored(core, namespace)[0].metadata.resource_version == version  # no write at all

    core.patch_namespaced_secret(NAME, namespace, {"stringData": {"other": "kept"}})  # a key someone else added
    patched = ensure_secret(settings(tmp_path, namespace), NAME, {"token": TOKEN + "2"})
    assert patched.changed and patched.keys == {"other": 4, "token": len(TOKEN) + 1}
    assert stored(core, namespace)[1] == {"other": "kept", "token": TOKEN + "2"}
    assert TOKEN not in repr(info) + repr(patched)


def test_missing_namespace_is_the_servers_404(kubeconfig, tmp_path):
    with pytest.raises(MRHelpersError, match="Namespace 'no-such-namespace' does not exist.*kubectl create namespace"):
        ensure_secret(settings(tmp_path, "no-such-namespace"), NAME, {"token": TOKEN})


@pytest.fixture
def limited(control_plane, core, namespace, tmp_path, monkeypatch):
    """The kubeconfig of a user RBAC lets only read Secrets in ``namespace`` (a real Role and RoleBinding)."""
    user = client.RbacV1Subject(kind="User", name=LIMITED_USER, api_group="rbac.authorization.k8s.io")
    grant_secrets(namespace, ["get", "list"], user)
    path = control_plane.kubeconfig(tmp_path / "limited.kubeconfig", token=LIMITED_TOKEN)
    monkeypatch.setenv("KUBECONFIG", str(path))
    return namespace


def test_rbac_may_read_but_not_create(limited, tmp_path):
    with pytest.raises(MRHelpersError, match=rf"Not allowed to create Secret {limited}/{NAME} \(HTTP 403, RBAC\)"
                       rf".*kubectl auth can-i create secrets -n {limited}") as info:  # fmt: skip
        ensure_secret(settings(tmp_path, limited), NAME, {"token": TOKEN})
    assert TOKEN not in str(info.value)


def test_rbac_may_read_but_not_patch(limited, core, tmp_path):
    core.create_namespaced_secret(limited, client.V1Secret(metadata=client.V1ObjectMeta(name=NAME),
                                                           string_data={"token": "old"}))  # fmt: skip
    with pytest.raises(MRHelpersError, match=r"Not allowed to patch Secret .*HTTP 403, RBAC"):
        ensure_secret(settings(tmp_path, limited), NAME, {"token": TOKEN})
    assert stored(core, limited)[1] == {"token": "old"}


def test_rbac_may_not_even_read(control_plane, namespace, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig(tmp_path / "k", token=LIMITED_TOKEN)))
    with pytest.raises(MRHelpersError, match=rf"Not allowed to get Secret {namespace}/{NAME} \(HTTP 403"):
        ensure_secret(settings(tmp_path, namespace), NAME, {"token": TOKEN})


def test_no_cluster(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nothing-here"))
    for var in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(MRHelpersError, match="kubectl cluster-info"):
        ensure_secret(settings(tmp_path, "kubeflow"), NAME, {"token": TOKEN})


def test_a_secret_made_by_hand_is_taken_over_with_its_keys(core, namespace, tmp_path):
    made = client.V1Secret(metadata=client.V1ObjectMeta(name=NAME), string_data={"token": TOKEN, "other": "kept"})
    core.create_namespaced_secret(namespace, made)
    info = ensure_secret(settings(tmp_path, namespace), NAME, {"token": TOKEN})
    secret, values = stored(core, namespace)
    assert not info.changed and values == {"other": "kept", "token": TOKEN}
    assert secret.metadata.labels == {"app.kubernetes.io/managed-by": "mrhelpers"}
