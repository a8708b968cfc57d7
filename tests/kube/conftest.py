"""The kube tier's fixtures: one real control plane per session, a fresh namespace per test."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import pytest

from tests.kube_api import ControlPlane

_names = itertools.count(1)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory):
    """etcd + kube-apiserver + kube-controller-manager on loopback for the session, stopped by pid at its end."""
    plane = ControlPlane(tmp_path_factory.mktemp("kube"))
    try:
        yield plane.start()
    finally:
        plane.stop()


@pytest.fixture
def kubeconfig(control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """KUBECONFIG points at the control plane as its admin (group system:masters) for this test."""
    path = control_plane.kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


@pytest.fixture
def core(kubeconfig: Path):
    """The Kubernetes client's CoreV1Api, as the admin: how a test sets the scene and reads the result."""
    from kubernetes import client, config

    config.load_kube_config(config_file=str(kubeconfig))
    return client.CoreV1Api()


@pytest.fixture
def namespace(core, request: pytest.FixtureRequest) -> str:
    """A namespace of this test's own, deleted after it (the namespace controller empties it)."""
    from kubernetes import client

    name = f"t{os.getpid() % 1000}-{next(_names)}-{request.node.name[:30]}".lower()
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name).strip("-")[:63]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    deadline = time.monotonic() + 30  # the serviceaccount controller adds "default"; pods need it
    while not core.list_namespaced_service_account(name, field_selector="metadata.name=default").items:
        assert time.monotonic() < deadline, f"no default ServiceAccount in {name} after 30 s"
        time.sleep(0.1)
    yield name
    core.delete_namespace(name)
