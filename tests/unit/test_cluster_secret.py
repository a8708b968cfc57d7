"""ensure_secret for backend='cluster', at its boundary: the Kubernetes API over HTTP.

No cluster runs here, so a small server on 127.0.0.1 answers the four Secret calls the way the
API server does (JSON bodies, base64 data, 403/404 statuses); the kubeconfig points at it.
"""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mrhelpers import MRHelpersError, Settings, ensure_secret

TOKEN = "cluster-token-3f7a9c"


class SecretsAPI(BaseHTTPRequestHandler):
    secrets: dict = {}
    namespaces = {"kubeflow", "forbidden"}
    calls: list = []

    def log_message(self, *args):
        pass

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self):
        parts = self.path.split("?")[0].strip("/").split("/")  # api v1 namespaces NS secrets [NAME]
        ns = parts[3]
        name = parts[5] if len(parts) > 5 else None
        self.calls.append((self.command, ns, name))
        if ns == "forbidden":
            self._send(403, {"kind": "Status", "code": 403, "reason": "Forbidden", "message": "forbidden"})
            return None
        if ns not in self.namespaces:
            self._send(
                404, {"kind": "Status", "code": 404, "reason": "NotFound", "message": f'namespaces "{ns}" not found'}
            )
            return None
        return ns, name

    def _body(self):
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def _secret(self, ns, name):
        return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": name, "namespace": ns},
                "data": self.secrets[(ns, name)]}  # fmt: skip

    def do_GET(self):
        if (route := self._route()) is None:
            return
        if route not in self.secrets:
            self._send(404, {"kind": "Status", "code": 404, "reason": "NotFound", "message": "secret not found"})
        else:
            self._send(200, self._secret(*route))

    def do_POST(self):
        if (route := self._route()) is None:
            return
        body = self._body()
        name = body["metadata"]["name"]
        self.secrets[(route[0], name)] = {
            k: base64.b64encode(v.encode()).decode() for k, v in body["stringData"].items()
        }
        self._send(201, self._secret(route[0], name))

    def do_PATCH(self):
        if (route := self._route()) is None:
            return
        for k, v in self._body()["stringData"].items():
            self.secrets[route][k] = base64.b64encode(v.encode()).decode()
        self._send(200, self._secret(*route))


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    SecretsAPI.secrets, SecretsAPI.calls = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SecretsAPI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "stub",
        "clusters": [{"name": "stub", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "users": [{"name": "stub", "user": {"token": "kube-token"}}],
        "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub"}}],
    }))  # fmt: skip
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    yield SecretsAPI
    server.shutdown()


def settings(tmp_path, namespace="kubeflow"):
    return Settings(backend="cluster", namespace=namespace, state_dir=tmp_path)


def test_creates_then_updates_then_leaves_alone(cluster, tmp_path):
    info = ensure_secret(settings(tmp_path), "model-registry-auth", {"token": TOKEN})
    assert info.changed and info.where == "kubeflow/model-registry-auth" and info.keys == {"token": len(TOKEN)}
    stored = cluster.secrets[("kubeflow", "model-registry-auth")]
    assert base64.b64decode(stored["token"]).decode() == TOKEN
    assert not ensure_secret(settings(tmp_path), "model-registry-auth", {"token": TOKEN}).changed
    assert ensure_secret(settings(tmp_path), "model-registry-auth", {"token": TOKEN + "2"}).changed
    assert base64.b64decode(cluster.secrets[("kubeflow", "model-registry-auth")]["token"]).decode() == TOKEN + "2"
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
