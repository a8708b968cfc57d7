"""Kubernetes Secrets through your kubeconfig (or a pod's ServiceAccount): what ``use_secret_as_env`` mounts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mrhelpers.backends.cluster.cluster import kube_client
from mrhelpers.backends.secrets import SecretInfo
from mrhelpers.core.errors import MRHelpersError

MANAGED_BY = {"app.kubernetes.io/managed-by": "mrhelpers"}
"""The label on every Kubernetes Secret that :func:`ensure_secret` created or took over."""


def refused(exc: Any, action: str, namespace: str, name: str) -> MRHelpersError:
    """The reader's message for an HTTP error from the Kubernetes API on Secret ``namespace/name``."""
    where = f"{namespace}/{name}"
    if exc.status == 403:
        return MRHelpersError(
            f"Not allowed to {action} Secret {where} (HTTP 403, RBAC). Check "
            f"`kubectl auth can-i {action} secrets -n {namespace}` and ask for that permission."
        )
    if exc.status == 404:
        return MRHelpersError(
            f"Namespace {namespace!r} does not exist, so Secret {name!r} cannot be created there. "
            f"Create it (`kubectl create namespace {namespace}`) or set MRH_NAMESPACE."
        )
    return MRHelpersError(f"The cluster refused to {action} Secret {where} (HTTP {exc.status}: {exc.reason}).")


def read_kubernetes_secret(namespace: str, name: str) -> dict[str, str]:
    """The decoded values of Secret ``namespace/name``, or ``{}`` when it does not exist."""
    import base64

    from kubernetes.client.rest import ApiException

    api = kube_client(f"read the Secret {name!r} in").CoreV1Api()
    try:
        current = api.read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return {}
        raise refused(exc, "get", namespace, name) from None
    except Exception as exc:  # connection refused, DNS, TLS
        raise MRHelpersError(
            f"The cluster did not answer ({type(exc).__name__}). Check `kubectl cluster-info`."
        ) from None
    return {k: base64.b64decode(v).decode() for k, v in (current.data or {}).items()}


def ensure_kubernetes_secret(namespace: str, name: str, data: Mapping[str, str]) -> SecretInfo:
    """Create or update an Opaque Secret through the kubeconfig's cluster; values never leave this function.

    A Secret that exists without the ``managed-by: mrhelpers`` label (made by hand, or by
    notebook 01's own Kubernetes code) is taken over: the label is added, other keys stay.
    """
    from kubernetes.client.rest import ApiException

    client = kube_client(f"create the Secret {name!r} in")
    api = client.CoreV1Api()
    try:
        current = api.read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise refused(exc, "get", namespace, name) from None
        current = None
    except Exception as exc:  # connection refused, DNS, TLS
        raise MRHelpersError(
            f"The cluster did not answer ({type(exc).__name__}). Check `kubectl cluster-info`."
        ) from None
    if current is None:
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace, labels=dict(MANAGED_BY)),
            type="Opaque",
            string_data=dict(data),
        )
        try:
            api.create_namespaced_secret(namespace, body)
        except ApiException as exc:
            raise refused(exc, "create", namespace, name) from None
        keys, changed = dict(data), True
    else:
        import base64

        stored = {k: base64.b64decode(v).decode() for k, v in (current.data or {}).items()}
        changed = any(stored.get(k) != v for k, v in data.items())
        labels = current.metadata.labels or {}
        patch: dict[str, Any] = {}
        if changed:
            patch["stringData"] = dict(data)
        if any(labels.get(k) != v for k, v in MANAGED_BY.items()):
            patch["metadata"] = {"labels": dict(MANAGED_BY)}
        if patch:
            try:
                api.patch_namespaced_secret(name, namespace, patch)
            except ApiException as exc:
                raise refused(exc, "patch", namespace, name) from None
        keys = {**stored, **data}
    return SecretInfo(
        name=name, where=f"{namespace}/{name}", keys={k: len(v) for k, v in sorted(keys.items())}, changed=changed
    )
