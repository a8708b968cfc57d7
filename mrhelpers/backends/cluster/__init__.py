"""The cluster backend: Kubeflow reached by kubeconfig or ServiceAccount (:mod:`.clients`), runs on KFP
(:mod:`.kfp_runs`), the token as a Secret (:mod:`.kube_secret`), KServe (:mod:`.kserve`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mrhelpers.authoring.handles import run_started
from mrhelpers.backends.cluster.clients import IN_CLUSTER_KFP_HOST, kfp_call, kfp_client
from mrhelpers.backends.cluster.kfp_runs import run_component, submit
from mrhelpers.backends.cluster.kserve import deploy
from mrhelpers.backends.cluster.kube_secret import ensure_kubernetes_secret, read_kubernetes_secret
from mrhelpers.backends.doctor import Finding, failed
from mrhelpers.core.errors import MRHelpersError
from mrhelpers.core.registry import connect
from mrhelpers.core.settings import CLUSTER_REGISTRY_URL, Settings, in_cluster, pod_namespace


class ClusterBackend:
    """``backend="cluster"``: the registry, KFP and KServe on Kubernetes."""

    name = "cluster"
    ensure_secret = staticmethod(ensure_kubernetes_secret)
    read_secret = staticmethod(read_kubernetes_secret)
    submit = staticmethod(submit)
    run_component = staticmethod(run_component)
    serve = staticmethod(deploy)

    def settings_defaults(self, pick: Callable[..., Any], state_dir: Path) -> dict[str, Any]:
        return {
            "registry_url": pick("registry_url", "http://127.0.0.1:8082"),
            "namespace": pick("namespace", None) or pod_namespace() or "kubeflow",
            "token": pick("token", None),
            # Inside a pod no port-forward runs: with no host, kfp_client uses the in-cluster ml-pipeline Service.
            "kfp_host": pick("kfp_host", "" if in_cluster() else "http://127.0.0.1:8888"),
        }

    def component_registry_url(self, settings: Settings) -> str:
        return CLUSTER_REGISTRY_URL.format(namespace=settings.namespace)

    def unreachable_hint(self, secret_name: str) -> str:
        return (
            "Check the port-forward (`setup/cluster.sh port-forward status`, or `kubectl port-forward -n kubeflow "
            "svc/model-registry-service 8082:8080`) and `make doctor`."
        )

    def run_link(self, settings: Settings, run_id: str) -> str | None:
        return f"{settings.kfp_ui_url.rstrip('/')}/#/runs/details/{run_id}"

    def run_started(self, settings: Settings, run_id: str, run_name: str | None = None) -> int | None:
        return run_started(settings, run_id, slack_s=300)  # the cluster's clock may differ from this machine's

    def doctor(self, settings: Settings) -> list[Finding]:
        """The registry answers with the token (``connect``); the KFP API answers a request (kfp.Client() may not)."""
        registry, kfp = settings.registry_url, settings.kfp_host or IN_CLUSTER_KFP_HOST
        checks = {f"the Model Registry at {registry} does not answer": lambda: connect(settings, retries=2),
                  f"the KFP API at {kfp} does not answer": lambda: kfp_call("listing experiments", settings,
                      kfp_client(settings).list_experiments, namespace=settings.namespace)}  # fmt: skip
        fix = "`make cluster-forward` (`make cluster-status` shows the port-forwards); `make doctor` checks the install"
        found = []
        for check, call in checks.items():
            try:
                call()
            except MRHelpersError as exc:
                found.append(failed(check, exc, fix))
        return found
