"""Serving on the cluster: apply the KServe InferenceService for a registry entry, wait until Ready,
and call it through a port-forward (KServe's V1 protocol).

This uses the Kubernetes client that kfp already brings, not the KServe Python SDK: every kserve
release pins ``pandas<3`` and ``psutil<6``, which would downgrade this environment and break its IPython.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from mrhelpers.authoring.uris import DEFAULT_MINIO_ENDPOINT
from mrhelpers.backends.cluster.cluster import kube_client
from mrhelpers.backends.net import free_port
from mrhelpers.backends.serving import (
    ISVC_API,
    KFP_S3_SECRET,
    S3_SECRET,
    SERVING_ACCOUNT,
    Served,
    s3_access_manifests,
    serving_manifest,
)
from mrhelpers.core.errors import MRHelpersError
from mrhelpers.core.progress import Progress


def _apply(create: Any, read: Any, patch: Any, body: dict[str, Any]) -> None:
    """Create ``body``, or merge it into what is there (idempotent)."""
    from kubernetes.client.exceptions import ApiException

    try:
        read()
    except ApiException as exc:
        if exc.status != 404:
            raise
        create(body)
        return
    patch(body)


def _api_error(what: str, exc: Exception, namespace: str) -> MRHelpersError:
    status = getattr(exc, "status", None)
    hint = {
        403: f"your kubeconfig may not do this in {namespace} (RBAC): `kubectl auth can-i create inferenceservices "
        f"-n {namespace}`",
        404: "KServe is not installed (no InferenceService API): `setup/cluster.sh up --with-kserve`",
    }.get(status, "`python -m mrhelpers doctor` with MRH_BACKEND=cluster")
    return MRHelpersError(f"{what} failed (HTTP {status or type(exc).__name__}). Hint: {hint}.")


def deploy(entry: dict[str, Any], settings: Any, *, timeout: float = 600, progress: bool = True) -> Served:
    """Apply the InferenceService for ``entry`` in ``settings.namespace`` and wait until it is Ready.

    It first gives the service read access to KFP's object store: a Secret with the keys of KFP's
    own Secret (``mlpipeline-minio-artifact``, never printed) and the endpoint annotations, and a
    ServiceAccount that carries it. Re-running updates what is there.

    Raises:
        MRHelpersError: No cluster, no KServe, no permission, or not Ready within ``timeout``
            (the message names the last condition KServe reported).
    """
    import base64

    client = kube_client("serve on", " `setup/cluster.sh up --with-kserve` creates one with KServe.")
    core, custom = client.CoreV1Api(), client.CustomObjectsApi()
    ns = settings.namespace
    s3_endpoint = (entry.get("metadata") or {}).get("s3_endpoint") or DEFAULT_MINIO_ENDPOINT
    manifest = serving_manifest(entry, namespace=ns, service_account=SERVING_ACCOUNT, s3_endpoint=s3_endpoint)
    name = manifest["metadata"]["name"]
    secret, account = s3_access_manifests(ns, s3_endpoint)
    try:
        kfp_keys = core.read_namespaced_secret(KFP_S3_SECRET, ns).data or {}
        secret["stringData"] = {
            "AWS_ACCESS_KEY_ID": base64.b64decode(kfp_keys["accesskey"]).decode(),
            "AWS_SECRET_ACCESS_KEY": base64.b64decode(kfp_keys["secretkey"]).decode(),
        }
    except (KeyError, client.exceptions.ApiException) as exc:
        raise MRHelpersError(
            f"Cannot read the object-store keys from KFP's Secret {ns}/{KFP_S3_SECRET} "
            f"({getattr(exc, 'status', None) or f'no key {exc}'}): is KFP installed in {ns}? "
            f"`kubectl -n {ns} get secret {KFP_S3_SECRET}`"
        ) from None
    try:
        _apply(lambda b: core.create_namespaced_secret(ns, b), lambda: core.read_namespaced_secret(S3_SECRET, ns),
               lambda b: core.patch_namespaced_secret(S3_SECRET, ns, b), secret)  # fmt: skip
        _apply(lambda b: core.create_namespaced_service_account(ns, b),
               lambda: core.read_namespaced_service_account(SERVING_ACCOUNT, ns),
               lambda b: core.patch_namespaced_service_account(SERVING_ACCOUNT, ns, b), account)  # fmt: skip
        group, version, plural = ISVC_API
        _apply(lambda b: custom.create_namespaced_custom_object(group, version, ns, plural, b),
               lambda: custom.get_namespaced_custom_object(group, version, ns, plural, name),
               lambda b: custom.patch_namespaced_custom_object(group, version, ns, plural, name, b),
               manifest)  # fmt: skip
    except client.exceptions.ApiException as exc:
        raise _api_error(f"Applying InferenceService {ns}/{name}", exc, ns) from None
    _wait_ready(custom, ns, name, timeout, Progress(f"InferenceService {ns}/{name}", quiet=not progress))
    return Served("cluster", f"{ns}/{name}", manifest, lambda rows: predict_remote(name, ns, rows))


def _ready(obj: dict[str, Any]) -> tuple[bool, str]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    for c in conditions:
        if c.get("type") == "Ready":
            return c.get("status") == "True", c.get("message") or c.get("reason") or ""
    return False, "no Ready condition yet"


def _wait_ready(custom: Any, ns: str, name: str, timeout: float, progress: Any) -> None:
    group, version, plural = ISVC_API
    poll = float(os.environ.get("MRH_POLL_SECONDS", "5"))
    start = time.monotonic()
    with progress:
        while True:
            ready, why = _ready(custom.get_namespaced_custom_object(group, version, ns, plural, name))
            if ready:
                progress.done("Ready")
                return
            if time.monotonic() - start > timeout:
                progress.done("not Ready")
                raise MRHelpersError(
                    f"InferenceService {ns}/{name} is not Ready after {timeout:.0f} s (last: {why or 'no message'}). "
                    f"`kubectl -n {ns} describe inferenceservice {name}` and "
                    f"`kubectl -n {ns} logs -l serving.kserve.io/inferenceservice={name} -c storage-initializer`."
                )
            progress.update(why)
            time.sleep(poll)


@contextlib.contextmanager
def port_forward(namespace: str, target: str, remote_port: int, *, timeout: float = 20) -> Iterator[int]:
    """``kubectl port-forward`` to ``target`` on a free local port for the ``with`` block; stopped by pid after."""
    port = free_port()
    command = ["kubectl", "-n", namespace, "port-forward", "--address", "127.0.0.1", target, f"{port}:{remote_port}"]
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except FileNotFoundError:
        raise MRHelpersError("kubectl is not on PATH; install it (see docs/cluster.md).") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read() if proc.stdout and proc.poll() is not None else ""
                raise MRHelpersError(f"`{' '.join(command)}` did not open 127.0.0.1:{port}: {out.strip()[:300]}")
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def predict_remote(name: str, namespace: str, rows: Any) -> list[Any]:
    """POST ``rows`` to InferenceService ``name`` (KServe V1 protocol) through a port-forward to its predictor."""
    instances = rows.tolist() if hasattr(rows, "tolist") else [list(r) for r in rows]
    body = json.dumps({"instances": instances}).encode()
    with port_forward(namespace, f"svc/{name}-predictor", 80) as port:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/models/{name}:predict", body, {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - a loopback URL we built
                return json.loads(response.read())["predictions"]
        except urllib.error.HTTPError as exc:
            raise MRHelpersError(
                f"{namespace}/{name} answered HTTP {exc.code}: {exc.read().decode(errors='replace')[:300]}"
            ) from None
