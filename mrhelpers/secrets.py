"""Notebook 01: keep the registry token in a Secret.

Local backend: a file store under ``<state dir>/secrets/<name>/<key>``, folders
mode 0700 and files mode 0600, the same shape as a Kubernetes Secret mounted as
files. Cluster backend: an Opaque Kubernetes Secret in ``settings.namespace``, created or
patched through your kubeconfig (what ``kfp.kubernetes.use_secret_as_env`` mounts).
Values are never printed; results report only key names and lengths. Both backends are
idempotent: storing the same values again reports ``changed=False``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets as _secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mrhelpers.errors import InvalidInput, MRHelpersError
from mrhelpers.settings import SECRET_TOKEN_KEY, Settings

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


@dataclasses.dataclass(frozen=True)
class SecretInfo:
    """What :func:`ensure_secret` did, without any value.

    Attributes:
        name: The Secret's name.
        where: The folder (local) or ``namespace/name`` (cluster).
        keys: The keys it holds, each with the length of its value.
        changed: False when the Secret already held exactly these values.
    """

    name: str
    where: str
    keys: dict[str, int]
    changed: bool


def _check(name: str, data: Mapping[str, str]) -> None:
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > 253:
        raise InvalidInput(
            "secret name", name, "a DNS-1123 name: lowercase letters, digits and '-', at most 253 characters"
        )
    if not data:
        raise InvalidInput("secret data", "{}", "at least one key, for example {'token': '...'}")
    for key, value in data.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise InvalidInput("secret key", key, "letters, digits, '-', '_' and '.'")
        if not isinstance(value, str) or not value:
            raise InvalidInput(f"secret value for key {key!r}", "<hidden>", "a non-empty string")


def local_secret_dir(state_dir: Path, name: str) -> Path:
    """The folder of local Secret ``name``."""
    return Path(state_dir) / "secrets" / name


def read_local_secret(state_dir: Path, name: str, key: str) -> str | None:
    """One value of a local Secret, or None when it does not exist."""
    try:
        return (local_secret_dir(state_dir, name) / key).read_text()
    except FileNotFoundError:
        return None


def choose_token(settings: Settings, given: str = "") -> str:
    """The token to store: ``given`` if set, else the one the store holds, else a new random one.

    A local registry enforces no token, so a random one is enough to exercise the
    path a cluster uses; on a cluster, pass the token your registry expects.
    """
    if given:
        return given
    if settings.backend == "cluster":
        existing = _read_kubernetes_secret(settings.namespace, settings.secret_name).get(SECRET_TOKEN_KEY)
    else:
        existing = read_local_secret(settings.state_dir, settings.secret_name, SECRET_TOKEN_KEY)
    return existing or _secrets.token_urlsafe(32)


MANAGED_BY = {"app.kubernetes.io/managed-by": "mrhelpers"}
"""The label on every Kubernetes Secret that :func:`ensure_secret` created or took over."""


def _refused(exc: Any, action: str, namespace: str, name: str) -> MRHelpersError:
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


def _read_kubernetes_secret(namespace: str, name: str) -> dict[str, str]:
    """The decoded values of Secret ``namespace/name``, or ``{}`` when it does not exist."""
    import base64

    from kubernetes.client.rest import ApiException

    from mrhelpers.cluster import kube_client

    api = kube_client(f"read the Secret {name!r} in").CoreV1Api()
    try:
        current = api.read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return {}
        raise _refused(exc, "get", namespace, name) from None
    except Exception as exc:  # connection refused, DNS, TLS
        raise MRHelpersError(
            f"The cluster did not answer ({type(exc).__name__}). Check `kubectl cluster-info`."
        ) from None
    return {k: base64.b64decode(v).decode() for k, v in (current.data or {}).items()}


def _ensure_kubernetes_secret(namespace: str, name: str, data: Mapping[str, str]) -> SecretInfo:
    """Create or update an Opaque Secret through the kubeconfig's cluster; values never leave this function.

    A Secret that exists without the ``managed-by: mrhelpers`` label (made by hand, or by
    notebook 01's own Kubernetes code) is taken over: the label is added, other keys stay.
    """
    from kubernetes.client.rest import ApiException

    from mrhelpers.cluster import kube_client

    client = kube_client(f"create the Secret {name!r} in")
    api = client.CoreV1Api()
    try:
        current = api.read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise _refused(exc, "get", namespace, name) from None
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
            raise _refused(exc, "create", namespace, name) from None
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
                raise _refused(exc, "patch", namespace, name) from None
        keys = {**stored, **data}
    return SecretInfo(
        name=name, where=f"{namespace}/{name}", keys={k: len(v) for k, v in sorted(keys.items())}, changed=changed
    )


def ensure_secret(settings: Settings, name: str, data: Mapping[str, str], *, _refresh: bool = True) -> SecretInfo:
    """Create the Secret ``name`` holding ``data``, or update it; idempotent.

    Args:
        settings: Chooses the backend (local file store or Kubernetes).
        name: The Secret's name, for example ``model-registry-auth``.
        data: Key to value, for example ``{"token": token}``. Keys that the
            Secret holds but ``data`` does not name are left as they are.

    Returns:
        A :class:`SecretInfo` with key names and value lengths, never values.
        Locally, a running token-checking proxy (``up(auth=True)``) is made to
        accept the new token at once.

    Raises:
        InvalidInput: For a bad name, key or empty value.
        MRHelpersError: When the store cannot be written.
    """
    _check(name, data)
    if settings.backend == "cluster":
        return _ensure_kubernetes_secret(settings.namespace, name, data)
    folder = local_secret_dir(settings.state_dir, name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder.parent, 0o700)
        os.chmod(folder, 0o700)
        changed = False
        for key, value in data.items():
            path = folder / key
            if path.exists() and path.read_text() == value:
                os.chmod(path, 0o600)
                continue
            tmp = path.with_name(f".{key}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(value)
            os.replace(tmp, path)
            changed = True
        keys = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if not p.name.startswith(".")}
    except OSError as exc:
        raise MRHelpersError(f"Cannot write the local secret store at {folder}: {exc.strerror}.") from exc
    if changed and _refresh and name == settings.secret_name:
        from mrhelpers.localstack import refresh_proxy

        refresh_proxy(settings)
    return SecretInfo(name=name, where=str(folder), keys=keys, changed=changed)
