"""The registry token as an Opaque Kubernetes Secret (what ``use_secret_as_env`` mounts)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from mrhelpers.backends.cluster.clients import kube_client
from mrhelpers.backends.secrets import SecretInfo
from mrhelpers.core.errors import MRHelpersError
from mrhelpers.core.settings import Settings

MANAGED_BY = {"app.kubernetes.io/managed-by": "mrhelpers"}  # on every Secret ensure_kubernetes_secret wrote


def _refused(exc: Any, action: str, namespace: str, name: str) -> MRHelpersError:
    other = f"The cluster refused to {action} Secret {namespace}/{name} (HTTP {exc.status}: {exc.reason})."
    known = {
        403: f"Not allowed to {action} Secret {namespace}/{name} (HTTP 403, RBAC). Check "
        f"`kubectl auth can-i {action} secrets -n {namespace}` and ask for that permission.",
        404: f"Namespace {namespace!r} does not exist, so Secret {name!r} cannot be created there. "
        f"Create it (`kubectl create namespace {namespace}`) or set MRH_NAMESPACE.",
    }
    return MRHelpersError(known.get(exc.status, other))


def _read(settings: Settings, name: str, what: str) -> tuple[Any, Any]:
    """A CoreV1Api, and Secret ``name`` (None when it does not exist)."""
    from kubernetes.client.rest import ApiException

    api = kube_client(settings, f"{what} the Secret {name!r} in").CoreV1Api()
    try:
        return api, api.read_namespaced_secret(name, settings.namespace)
    except ApiException as exc:
        if exc.status == 404:
            return api, None
        raise _refused(exc, "get", settings.namespace, name) from None
    except Exception as exc:  # connection refused, DNS, TLS
        raise MRHelpersError(
            f"The cluster did not answer ({type(exc).__name__}). Check `kubectl cluster-info`."
        ) from None


def _values(secret: Any) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in ((secret and secret.data) or {}).items()}


def read_kubernetes_secret(settings: Settings, name: str) -> dict[str, str]:
    """The decoded values of Secret ``name`` in ``settings.namespace``, or ``{}`` when it does not exist."""
    return _values(_read(settings, name, "read")[1])


def ensure_kubernetes_secret(settings: Settings, name: str, data: Mapping[str, str]) -> SecretInfo:
    """Create or patch Secret ``name`` with ``data``; one made by hand gets :data:`MANAGED_BY`, its keys stay."""
    from kubernetes.client.rest import ApiException

    api, current = _read(settings, name, "create")
    ns, stored = settings.namespace, _values(current)
    changed = current is None or any(stored.get(k) != v for k, v in data.items())
    patch: dict[str, Any] = {"stringData": dict(data)} if changed else {}
    if not current or MANAGED_BY.items() - (current.metadata.labels or {}).items():
        patch["metadata"] = {"name": name, "labels": MANAGED_BY}
    try:
        if current is None:
            api.create_namespaced_secret(ns, {"type": "Opaque", **patch})
        elif patch:
            api.patch_namespaced_secret(name, ns, patch)
    except ApiException as exc:
        raise _refused(exc, "patch" if current else "create", ns, name) from None
    keys = {**stored, **data}
    return SecretInfo(name, f"{ns}/{name}", {k: len(v) for k, v in sorted(keys.items())}, changed)
