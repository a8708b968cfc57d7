"""Reaching the cluster: the Kubernetes API (a kubeconfig, else a pod's ServiceAccount) and the KFP API."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mrhelpers.core.errors import MRHelpersError
from mrhelpers.core.settings import Settings, in_cluster

FORWARD_HINT = "Start the port-forwards with `setup/cluster.sh port-forward start` (or `make cluster-forward`)."
IN_CLUSTER_KFP_HOST = "http://ml-pipeline.kubeflow.svc.cluster.local:8888"  # a pod needs no port-forward


def kube_client(settings: Settings, what: str, hint: str = "") -> Any:
    """``kubernetes.client`` configured as ``kubectl`` would be: the kubeconfig, else a pod's ServiceAccount."""
    from kubernetes import client, config
    from kubernetes.config.incluster_config import InClusterConfigLoader

    kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    has_kubeconfig = any(Path(p).is_file() for p in kubeconfig.split(os.pathsep) if p)
    try:
        if has_kubeconfig or not in_cluster(settings):
            config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
        else:
            account = settings.serviceaccount_dir
            InClusterConfigLoader(str(account / "token"), str(account / "ca.crt")).load_and_set()
    except Exception as exc:  # noqa: BLE001 - a missing file, a bad context, no cluster: the same advice
        raise MRHelpersError(
            f"No cluster to {what}: no kubeconfig loaded ({type(exc).__name__}), and this is not a pod with a "
            f"ServiceAccount token. Check `kubectl cluster-info`, or set KUBECONFIG.{hint}"
        ) from None
    return client


def kfp_client(settings: Settings) -> Any:
    """A ``kfp.Client`` sending ``settings.kfp_token``, else in a pod its KFP token (re-read on each call)."""
    import warnings

    import kfp
    from kfp.client import KF_PIPELINES_SA_TOKEN_ENV, KF_PIPELINES_SA_TOKEN_PATH
    from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials

    token = settings.kfp_token.reveal() or None
    pod_token = Path(os.environ.get(KF_PIPELINES_SA_TOKEN_ENV) or KF_PIPELINES_SA_TOKEN_PATH)
    use_pod_token = token is None and in_cluster(settings) and pod_token.is_file()  # not without the PodDefault
    credentials = ServiceAccountTokenVolumeCredentials(str(pod_token)) if use_pod_token else None
    settings = settings.replace(kfp_host=settings.kfp_host or IN_CLUSTER_KFP_HOST)

    with warnings.catch_warnings():  # kfp.Client asks the server's healthz (single- or multi-user) at once
        warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP v2.0.0-beta.2 and later"
        return kfp_call("connecting", settings, kfp.Client, host=settings.kfp_host, namespace=settings.namespace,
                        ui_host=settings.kfp_ui_url, existing_token=token, credentials=credentials)  # fmt: skip


def kfp_call(what: str, settings: Settings, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)``, one KFP API call; connection and HTTP errors become messages naming the fix."""
    import kfp_server_api
    import urllib3

    try:
        return call(*args, **kwargs)
    except TimeoutError:  # kfp.Client gives up on /apis/v2beta1/healthz after 5 tries
        raise MRHelpersError(
            f"{settings.kfp_host} answers, but not as a KFP API server ({what}: no healthz). Point MRH_KFP_HOST "
            f"at the KFP API (the ml-pipeline Service, port 8888). {FORWARD_HINT}"
        ) from None
    except urllib3.exceptions.HTTPError as exc:
        raise MRHelpersError(
            f"The KFP API server at {settings.kfp_host} does not answer ({what}: {type(exc).__name__}). "
            f"{FORWARD_HINT} Then check `kubectl -n kubeflow get pods` or `make doctor`."
        ) from None
    except kfp_server_api.ApiException as exc:
        hint = {
            401: "it wants authentication: set MRH_KFP_TOKEN, or use the port-forward to ml-pipeline directly",
            403: "your identity may not do this in this namespace (RBAC): check the namespace and your profile",
            404: "the object is gone or the URL is not a KFP API server (is MRH_KFP_HOST the API, not the UI?)",
        }.get(exc.status, "see the message from the server")
        body = (exc.body or "").strip().splitlines()
        raise MRHelpersError(
            f"KFP refused {what} (HTTP {exc.status} {exc.reason}): {body[0][:300] if body else ''}. Hint: {hint}."
        ) from None
