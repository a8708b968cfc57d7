"""KServe by the Kubernetes client (the KServe SDK pins ``pandas<3``, ``psutil<6``): apply, wait, predict."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlparse

from mrhelpers.authoring.uris import DEFAULT_MINIO_ENDPOINT
from mrhelpers.backends.cluster.clients import kube_client
from mrhelpers.backends.serving import SERVING_ACCOUNT, Served, serving_manifest
from mrhelpers.core.errors import MRHelpersError
from mrhelpers.core.progress import Progress
from mrhelpers.core.settings import Settings

ISVC_API = ("serving.kserve.io", "v1beta1", "inferenceservices")
KFP_S3_SECRET = "mlpipeline-minio-artifact"  # noqa: S105 - KFP's own Secret (keys accesskey, secretkey)
S3_SECRET = "mrh-s3-credentials"  # noqa: S105 - ours, holding KFP's keys for KServe's storage initializer


def _apply(api_client: Any, path: str, body: dict[str, Any]) -> None:
    """Create ``body`` under ``path``, or update what is there: server-side apply, field manager ``mrhelpers``."""
    headers = {"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"}
    query = [("fieldManager", "mrhelpers"), ("force", "true")]
    api_client.call_api(f"{path}/{body['metadata']['name']}", "PATCH", body=body, query_params=query,
                        header_params=headers, auth_settings=["BearerToken"], response_type="object")  # fmt: skip


def deploy(entry: dict[str, Any], settings: Settings, *, timeout: float = 600, progress: bool = True) -> Served:
    """Apply ``entry``'s InferenceService, reading KFP's object store with KFP's keys; wait until it is Ready."""
    client = kube_client(settings, "serve on", " `setup/cluster.sh up --with-kserve` creates one with KServe.")
    core, custom, ns = client.CoreV1Api(), client.CustomObjectsApi(), settings.namespace
    s3_endpoint = (entry.get("metadata") or {}).get("s3_endpoint") or DEFAULT_MINIO_ENDPOINT
    manifest = serving_manifest(entry, namespace=ns, s3_endpoint=s3_endpoint)
    name = manifest["metadata"]["name"]
    try:
        keys = core.read_namespaced_secret(KFP_S3_SECRET, ns).data or {}  # base64, copied as they are
        data = {"AWS_ACCESS_KEY_ID": keys["accesskey"], "AWS_SECRET_ACCESS_KEY": keys["secretkey"]}
    except (KeyError, client.exceptions.ApiException) as exc:
        raise MRHelpersError(
            f"Cannot read the object-store keys from KFP's Secret {ns}/{KFP_S3_SECRET} "
            f"({getattr(exc, 'status', None) or f'no key {exc}'}): is KFP installed in {ns}? "
            f"`kubectl -n {ns} get secret {KFP_S3_SECRET}`"
        ) from None
    endpoint = urlparse(s3_endpoint)
    tls = "1" if endpoint.scheme == "https" else "0"
    annotations = {"serving.kserve.io/s3-endpoint": endpoint.netloc, "serving.kserve.io/s3-usehttps": tls,
                   "serving.kserve.io/s3-verifyssl": tls, "serving.kserve.io/s3-region": "us-east-1"}  # fmt: skip
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": data,
              "metadata": {"name": S3_SECRET, "namespace": ns, "annotations": annotations}}  # fmt: skip
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "secrets": [{"name": S3_SECRET}],
               "metadata": {"name": SERVING_ACCOUNT, "namespace": ns}}  # fmt: skip
    group, version, plural = ISVC_API
    paths = [f"/api/v1/namespaces/{ns}/secrets", f"/api/v1/namespaces/{ns}/serviceaccounts",
             f"/apis/{group}/{version}/namespaces/{ns}/{plural}"]  # fmt: skip
    try:
        for path, body in zip(paths, (secret, account, manifest), strict=True):
            _apply(client.ApiClient(), path, body)
    except client.exceptions.ApiException as exc:
        hint = {
            403: f"not allowed (RBAC): `kubectl auth can-i create inferenceservices -n {ns}`",
            404: "KServe is not installed (no InferenceService API): `setup/cluster.sh up --with-kserve`",
        }.get(exc.status, "`MRH_BACKEND=cluster make doctor`")
        raise MRHelpersError(f"Applying InferenceService {ns}/{name} failed (HTTP {exc.status}): {hint}.") from None
    with Progress(f"InferenceService {ns}/{name}", quiet=not progress) as shown:
        deadline = time.monotonic() + timeout
        while True:
            obj = custom.get_namespaced_custom_object(group, version, ns, plural, name)
            ready = next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {})
            if ready.get("status") == "True":
                break
            why = ready.get("message") or ready.get("reason") or ("no message" if ready else "no Ready condition yet")
            if time.monotonic() > deadline:
                shown.done("not Ready")
                raise MRHelpersError(
                    f"InferenceService {ns}/{name} is not Ready after {timeout:.0f} s (last: {why}). "
                    f"`kubectl -n {ns} describe inferenceservice {name}` and "
                    f"`kubectl -n {ns} logs -l serving.kserve.io/inferenceservice={name} -c storage-initializer`."
                )
            shown.update(why)
            time.sleep(settings.poll_seconds)
        shown.done("Ready")
    return Served("cluster", f"{ns}/{name}", manifest, lambda rows: predict_remote(name, ns, rows))


def predict_remote(name: str, namespace: str, rows: Any) -> list[Any]:
    """POST ``rows`` to InferenceService ``name`` (KServe V1) through a ``kubectl port-forward`` for this call."""
    body = json.dumps({"instances": rows.tolist() if hasattr(rows, "tolist") else [list(r) for r in rows]}).encode()
    command = ["kubectl", "-n", namespace, "port-forward", "--address", "127.0.0.1", f"svc/{name}-predictor", ":80"]
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except FileNotFoundError:
        raise MRHelpersError("kubectl is not on PATH; install it (see docs/cluster.md).") from None
    try:
        said = proc.stdout.readline()  # "Forwarding from 127.0.0.1:<port> -> 80" once it listens, else why not
        port = re.match(r"Forwarding from 127\.0\.0\.1:(\d+)", said)
        if not port:
            raise MRHelpersError(f"`{' '.join(command)}` did not start: {said.strip()[:300]}")
        url = f"http://127.0.0.1:{port.group(1)}/v1/models/{name}:predict"
        request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - a loopback URL we built
            return json.loads(response.read())["predictions"]
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise MRHelpersError(f"{namespace}/{name} answered HTTP {exc.code}: {detail}") from None
    finally:
        proc.kill()
        proc.wait()
