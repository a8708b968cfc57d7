"""The cluster backend: a Kubeflow cluster (kind through ``setup/cluster.sh``, or yours) reached through
your kubeconfig or a pod's ServiceAccount (:mod:`.cluster`), Kubernetes Secrets (:mod:`.secrets`), the KFP
API server, KServe, and the cluster's doctor (:mod:`.doctor`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mrhelpers.authoring.handles import RunHandle, run_started
from mrhelpers.backends.cluster import cluster
from mrhelpers.backends.cluster.doctor import cluster_doctor
from mrhelpers.backends.cluster.secrets import ensure_kubernetes_secret, read_kubernetes_secret
from mrhelpers.backends.cluster.serving import deploy
from mrhelpers.backends.doctor import Finding
from mrhelpers.backends.secrets import SecretInfo
from mrhelpers.backends.serving import Served
from mrhelpers.core.settings import CLUSTER_REGISTRY_URL, Settings, in_cluster, pod_namespace


class ClusterBackend:
    """``backend="cluster"``: the registry, KFP and KServe on Kubernetes."""

    name = "cluster"

    def settings_defaults(self, pick: Callable[..., Any], state_dir: Path) -> dict[str, Any]:
        return {
            "registry_url": pick("registry_url", "http://127.0.0.1:8082"),
            "namespace": pick("namespace", None) or pod_namespace() or "kubeflow",
            "token": pick("token", None),
            # Inside a pod no port-forward runs: with no host, kfp_client uses the in-cluster ml-pipeline Service.
            "kfp_host": pick("kfp_host", "" if in_cluster() else "http://127.0.0.1:8888"),
        }

    def component_registry_url(self, settings: Settings) -> str:
        return os.environ.get("MRH_COMPONENT_REGISTRY_URL") or CLUSTER_REGISTRY_URL.format(namespace=settings.namespace)

    def unreachable_hint(self, secret_name: str) -> str:
        return (
            "Check the port-forward (`kubectl port-forward -n kubeflow svc/model-registry-service "
            "8082:8080`) and `python -m mrhelpers doctor`."
        )

    def run_link(self, settings: Settings, run_id: str) -> str | None:
        return f"{settings.kfp_ui_url.rstrip('/')}/#/runs/details/{run_id}"

    def run_started(self, settings: Settings, run_id: str) -> int | None:
        return run_started(settings, run_id, slack_s=300)  # the cluster's clock may differ from this machine's

    def start(self, settings: Settings, **kwargs: Any) -> Any:
        return cluster.up(settings, **kwargs)

    def stop(self, settings: Settings, *, quiet: bool = False) -> None:
        # The port-forwards only: deleting the cluster is a separate, deliberate step (setup/cluster.sh down).
        cluster.port_forward("stop")

    def status(self, settings: Settings) -> Any:
        return cluster.status(settings)

    def ensure_secret(
        self, settings: Settings, name: str, data: Mapping[str, str], *, refresh: bool = True
    ) -> SecretInfo:
        return ensure_kubernetes_secret(settings.namespace, name, data)

    def read_secret(self, settings: Settings, name: str) -> dict[str, str]:
        return read_kubernetes_secret(settings.namespace, name)

    def submit(self, pipeline: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> RunHandle:
        return cluster.submit(pipeline, arguments, settings)

    def run_component(
        self, component: Callable[..., Any], arguments: dict[str, Any], settings: Settings
    ) -> dict[str, Any]:
        return cluster.run_component(component, arguments, settings)

    def serve(self, entry: dict[str, Any], settings: Settings, *, timeout: float, progress: bool) -> Served:
        return deploy(entry, settings, timeout=timeout, progress=progress)

    def doctor(self, settings: Settings) -> list[Finding]:
        return cluster_doctor(settings)

    def doctor_ok(self, settings: Settings) -> str:
        return "ok: no known failure found on the cluster."

    def after_tutorial(self, settings: Settings) -> str | None:
        return None
