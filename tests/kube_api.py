"""A real Kubernetes control plane on loopback, for the ``kube`` test tier.

etcd (Debian's ``etcd-server``), kube-apiserver and kube-controller-manager (built by ``make tools``
from ``setup/kube/go.mod`` into ``.mrh/bin``), on free 127.0.0.1 ports, in a folder of the session's
own. The API server serves TLS with a certificate made here, authenticates static tokens and
authorizes with RBAC; the controller-manager runs only the ``serviceaccount``, ``serviceaccount-token``
and ``namespace`` controllers (default ServiceAccounts, namespace deletion). There is no scheduler and
no kubelet: pods are stored and validated, never run. Everything is stopped by pid in :meth:`stop`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from mrhelpers.core.settings import default_bin_dir

ADMIN_TOKEN = "admin-token-for-tests-only"  # noqa: S105 - a throwaway token of a loopback test cluster
LIMITED_TOKEN = "limited-token-for-tests-only"  # noqa: S105
LIMITED_USER = "limited"
"""A user in no group but system:authenticated: RBAC denies it everything a test does not grant."""
BINARIES = ("kube-apiserver", "kube-controller-manager")
"""What the control plane runs (``make tools`` also builds kubectl, for the tests of setup/cluster.sh)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing_binaries(bin_dir: Path | None = None) -> list[str]:
    """The control-plane programs that are not there yet (``make tools`` builds them)."""
    bin_dir = bin_dir or default_bin_dir()
    out = [name for name in BINARIES if not (bin_dir / name).is_file()]
    if not shutil.which("etcd"):
        out.append("etcd (Debian's etcd-server)")
    return out


class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager) in ``work_dir``; ``start()``, then ``stop()``."""

    def __init__(self, work_dir: Path, bin_dir: Path | None = None) -> None:
        self.work = Path(work_dir)
        self.bin = Path(bin_dir or default_bin_dir())
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.etcd_port, self.peer_port, self.port = free_port(), free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.ca_file = self.work / "pki" / "server.crt"

    # ------------------------------------------------------------------------------------- files

    def _pki(self) -> None:
        pki = self.work / "pki"
        pki.mkdir(parents=True, exist_ok=True)
        quiet = {"check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        # The API server's serving certificate, self-signed for 127.0.0.1: clients trust exactly it.
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-keyout", pki / "server.key", "-out", pki / "server.crt", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-addext", "basicConstraints=critical,CA:TRUE"], **quiet)  # fmt: skip
        # The key pair that signs and checks ServiceAccount tokens.
        subprocess.run(["openssl", "genrsa", "-out", pki / "sa.key", "2048"], **quiet)
        subprocess.run(["openssl", "rsa", "-in", pki / "sa.key", "-pubout", "-out", pki / "sa.pub"], **quiet)
        (pki / "tokens.csv").write_text(
            f'{ADMIN_TOKEN},admin,admin-uid,"system:masters"\n{LIMITED_TOKEN},{LIMITED_USER},limited-uid\n'
        )

    def kubeconfig(self, path: Path, token: str = ADMIN_TOKEN, namespace: str = "default") -> Path:
        """A kubeconfig for this API server and ``token`` (the admin's unless told), checking its certificate."""
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)}}],
            "users": [{"name": "test", "user": {"token": token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test", "namespace": namespace}}],
        }))  # fmt: skip
        return path

    # ------------------------------------------------------------------------------------- processes

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "wb")  # noqa: SIM115 - the process owns it until stop()
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append((name, proc))
        return proc

    def log_tail(self, name: str, lines: int = 15) -> str:
        try:
            return "\n".join((self.work / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def _wait(self, what: str, name: str, ready, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        proc = dict(self.procs)[name]
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited ({proc.returncode}) before {what}; its log ends:\n{self.log_tail(name)}"
                )
            with contextlib.suppress(OSError, urllib.error.URLError):
                if ready():
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{name}: no {what} within {timeout:.0f} s; its log ends:\n{self.log_tail(name)}")

    def get(self, path: str, token: str = ADMIN_TOKEN) -> tuple[int, dict]:
        """One GET on the API server: (status, JSON body, or ``{"text": ...}`` for a plain-text answer)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as response:  # noqa: S310 - loopback
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        try:
            return status, json.loads(body or b"{}")
        except json.JSONDecodeError:  # /readyz and /healthz answer in text
            return status, {"text": body.decode(errors="replace")}

    def start(self) -> ControlPlane:
        missing = missing_binaries(self.bin)
        if missing:
            raise RuntimeError(f"Missing {', '.join(missing)} (in {self.bin} and on PATH): run `make tools`.")
        self._pki()
        pki = self.work / "pki"
        peer = f"http://127.0.0.1:{self.peer_port}"
        client = f"http://127.0.0.1:{self.etcd_port}"
        self._spawn("etcd", ["etcd", "--name", "test", "--data-dir", str(self.work / "etcd"),
                             "--listen-client-urls", client, "--advertise-client-urls", client,
                             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                             "--initial-cluster", f"test={peer}", "--log-level", "warn"])  # fmt: skip
        self._spawn("kube-apiserver", [
            str(self.bin / "kube-apiserver"), f"--etcd-servers={client}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.port}",
            f"--tls-cert-file={pki / 'server.crt'}", f"--tls-private-key-file={pki / 'server.key'}",
            f"--token-auth-file={pki / 'tokens.csv'}", "--authorization-mode=RBAC",
            f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.96.0.0/24", "--storage-media-type=application/json", "-v=1",
        ])  # fmt: skip
        self._wait("readiness (/readyz)", "kube-apiserver", lambda: self.get("/readyz")[0] == 200, timeout=120)
        self._spawn("kube-controller-manager", [
            str(self.bin / "kube-controller-manager"),
            f"--kubeconfig={self.kubeconfig(self.work / 'admin.kubeconfig')}",
            "--controllers=serviceaccount,serviceaccount-token,namespace",
            f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={self.ca_file}",
            "--bind-address=127.0.0.1", "--secure-port=0", "--leader-elect=false", "-v=1",
        ])  # fmt: skip
        self._wait(
            "default ServiceAccount",
            "kube-controller-manager",
            lambda: self.get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
        )
        return self

    def stop(self) -> None:
        """Stop every process this control plane started, newest first, by pid."""
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
        self.procs.clear()


def grant_secrets(namespace: str, verbs: list[str], subject) -> None:
    """A real Role allowing ``verbs`` on Secrets in ``namespace``, bound to ``subject`` (a RbacV1Subject)."""
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api()
    rule = client.V1PolicyRule(api_groups=[""], resources=["secrets"], verbs=verbs)
    rbac.create_namespaced_role(namespace, client.V1Role(metadata=client.V1ObjectMeta(name="secrets"), rules=[rule]))
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="secrets"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="secrets"),
            subjects=[subject],
        ),
    )
