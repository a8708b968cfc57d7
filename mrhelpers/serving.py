"""Notebook 07: from a registry entry to serving.

Resolve "the production version of model X" to its artifact, turn KFP's
artifact URIs into ones a serving runtime can fetch, build the KServe
InferenceService for it (:func:`serving_manifest`, for review), and serve it
(:func:`serve`): locally the file is loaded in this process; on a cluster the
InferenceService is applied with read access to KFP's object store, waited for
until Ready, and called through a port-forward (KServe's V1 protocol).

On a cluster this uses the Kubernetes client that kfp already brings, not the
KServe Python SDK: every kserve release pins ``pandas<3`` and ``psutil<6``, which
would downgrade this environment and break its IPython.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mrhelpers.errors import InvalidInput, MRHelpersError

if TYPE_CHECKING:
    from model_registry import ModelRegistry

# KServe's model format names for the formats this project registers.
KSERVE_FORMATS = {"sklearn": "sklearn", "xgboost": "xgboost", "onnx": "onnx", "tensorflow": "tensorflow",
                  "pytorch": "pytorch", "lightgbm": "lightgbm", "huggingface": "huggingface"}  # fmt: skip
DEFAULT_MINIO_ENDPOINT = "http://seaweedfs.kubeflow:9000"
SERVING_ACCOUNT = "mrh-model-serving"
"""The ServiceAccount the InferenceService runs as; it carries the object-store Secret."""
S3_SECRET = "mrh-s3-credentials"  # noqa: S105 - a name
KFP_S3_SECRET = "mlpipeline-minio-artifact"  # noqa: S105 - KFP's own Secret (keys accesskey, secretkey)
ISVC_API = ("serving.kserve.io", "v1beta1", "inferenceservices")


CLUSTER_URI_SHAPE = "minio://mlpipeline/v2/artifacts/<pipeline name>/<run id>/<task name>/<artifact id>/model"
"""Where KFP (2.x, default pipeline root) stores a task's output Model on a cluster, with its parts unfilled."""


def serving_uri(uri: str, *, s3_endpoint: str = DEFAULT_MINIO_ENDPOINT) -> dict[str, str]:
    """Convert an artifact URI as KFP writes it into one a serving runtime can fetch.

    ``minio://bucket/key`` (KFP's object store on a cluster) becomes
    ``s3://bucket/key`` with the endpoint recorded beside it; ``s3://``,
    ``gs://``, ``oci://``, ``pvc://``, ``hf://`` and ``https://`` pass unchanged;
    ``file://`` and absolute paths stay local (fine for ``kfp.local``, not for a cluster).

    Args:
        uri: The artifact URI.
        s3_endpoint: The S3 endpoint of the object store behind ``minio://``
            (default: KFP's MinIO service in namespace kubeflow).

    Returns:
        ``{"uri": ..., "s3_endpoint": ...}`` (``s3_endpoint`` only for S3 URIs).

    Raises:
        InvalidInput: Empty, relative, or a scheme no runtime can fetch, or a
            ``minio://``/``s3://`` URI without a bucket.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInput("uri", uri, "a non-empty artifact URI")
    if uri.startswith("/"):
        from pathlib import PurePosixPath

        return {"uri": PurePosixPath(uri).as_uri()}
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme in ("minio", "s3"):
        if not parsed.netloc:
            raise InvalidInput("uri", uri, f"{scheme}://<bucket>/<key>")
        return {"uri": f"s3://{parsed.netloc}{parsed.path}", "s3_endpoint": s3_endpoint}
    if scheme in ("gs", "oci", "pvc", "hf", "https", "http", "file"):
        if scheme != "file" and not parsed.netloc:
            raise InvalidInput("uri", uri, f"{scheme}://<location>")
        return {"uri": uri}
    raise InvalidInput(
        "uri", uri, "minio://, s3://, gs://, oci://, pvc://, hf://, https://, file:// or an absolute path"
    )


def resolve_production(registry: ModelRegistry, name: str) -> dict[str, Any]:
    """The production version of model ``name``: ids, version name, URI, format and metadata.

    Raises:
        InvalidInput: The model does not exist or has no production version.
    """
    from mrhelpers.inspection import versions_frame

    frame = versions_frame(registry, name)
    if frame.empty:
        raise InvalidInput("model", name, "the name of a registered model with versions")
    prod = frame[frame.stage == "production"]
    if prod.empty:
        raise InvalidInput("model", name, "a model with a production version: promote one with set_stage() first")
    row = prod.iloc[-1]
    model_id = registry.get_registered_model(name).id
    return {
        "model": name, "model_id": model_id, "version": row.version, "version_id": row.version_id,
        "uri": registry.get_model_artifact(name, row.version).uri,  # exact: the frame masks credentials
        "format": row.format, "format_version": row.format_version, "metadata": row.metadata,
    }  # fmt: skip


def serving_manifest(
    entry: dict[str, Any],
    *,
    namespace: str = "kubeflow",
    service_account: str | None = None,
    s3_endpoint: str = DEFAULT_MINIO_ENDPOINT,
) -> dict[str, Any]:
    """A KServe ``InferenceService`` for a registry entry from :func:`resolve_production`.

    The labels ``modelregistry/registered-model-id`` and ``modelregistry/model-version-id``
    link the service back to the registered model and version (the Model Registry
    UI lists deployments by them). Nothing is applied. For an ``s3://`` URI the
    storage initializer finds the endpoint and keys through ``service_account``
    (see :func:`s3_access_manifests`).

    Raises:
        InvalidInput: A format KServe has no runtime for, or a URI it cannot fetch.
    """
    fmt = str(entry.get("format") or "").lower()
    if fmt not in KSERVE_FORMATS:
        raise InvalidInput("model format", entry.get("format"), f"one KServe serves: {', '.join(KSERVE_FORMATS)}")
    where = serving_uri(entry["uri"], s3_endpoint=s3_endpoint)
    if where["uri"].startswith("file://"):
        raise InvalidInput(
            "uri", entry["uri"], "a URI the cluster can fetch (s3://, gs://, oci://, pvc://): not a local file"
        )
    name = isvc_name(entry)
    # KServe v0.20 calls this mode "Standard" and still accepts the older name, which earlier releases need.
    annotations = {"serving.kserve.io/deploymentMode": "RawDeployment"}
    predictor: dict[str, Any] = {
        "model": {
            "modelFormat": {
                "name": KSERVE_FORMATS[fmt],
                **({"version": entry["format_version"]} if entry.get("format_version") else {}),
            },
            "storageUri": where["uri"],
        }
    }
    if service_account:
        predictor["serviceAccountName"] = service_account
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "modelregistry/registered-model-id": str(entry["model_id"]),
                "modelregistry/model-version-id": str(entry["version_id"]),
            },
            "annotations": annotations,
        },
        "spec": {"predictor": predictor},
    }


def load_model(uri: str) -> Any:
    """Load a model that a local run saved with joblib, from its ``file://`` URI or path (a model folder or file).

    Raises:
        InvalidInput: The URI is not local (on a cluster, serve it instead).
    """
    import joblib

    where = serving_uri(uri)["uri"]
    if not where.startswith("file://"):
        raise InvalidInput("uri", uri, "a file:// URI or an absolute path (load_model reads local files)")
    from mrhelpers.training import model_file

    return joblib.load(model_file(unquote_path(where)))


def isvc_name(entry: dict[str, Any]) -> str:
    """The InferenceService name for a registry entry: ``<model>-<version>``, DNS-safe, at most 63 characters."""
    return f"{entry['model']}-{entry['version']}".lower().replace(".", "-").replace("_", "-")[:63].strip("-")


def s3_access_manifests(namespace: str, s3_endpoint: str = DEFAULT_MINIO_ENDPOINT) -> list[dict[str, Any]]:
    """The Secret (keys left out: :func:`deploy` copies them from KFP's Secret) and ServiceAccount that let
    KServe's storage initializer read KFP's object store at ``s3_endpoint``."""
    endpoint = urlparse(s3_endpoint)
    secret = {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": S3_SECRET, "namespace": namespace, "annotations": {
            "serving.kserve.io/s3-endpoint": endpoint.netloc,
            "serving.kserve.io/s3-usehttps": "1" if endpoint.scheme == "https" else "0",
            "serving.kserve.io/s3-verifyssl": "1" if endpoint.scheme == "https" else "0",
            "serving.kserve.io/s3-region": "us-east-1",
        }},
    }  # fmt: skip
    account = {
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": SERVING_ACCOUNT, "namespace": namespace}, "secrets": [{"name": S3_SECRET}],
    }  # fmt: skip
    return [secret, account]


# --------------------------------------------------------------------------- serving: local and cluster


@dataclasses.dataclass
class Served:
    """A model being served: ``predict(rows)`` returns one prediction per row.

    Attributes:
        backend: ``local`` (loaded in this process) or ``cluster`` (a KServe InferenceService).
        where: The file (local) or ``namespace/name`` of the InferenceService (cluster).
        manifest: The InferenceService: the one applied on a cluster; locally, the one a run on a
            cluster would get (its URI in the object-store form KFP writes there).
    """

    backend: str
    where: str
    manifest: dict[str, Any]
    _predict: Any = dataclasses.field(repr=False, default=None)

    def predict(self, rows: Any) -> list[Any]:
        """Predictions for ``rows`` (a 2-D array or list of lists), as plain Python values."""
        out = self._predict(rows)
        return out.tolist() if hasattr(out, "tolist") else list(out)


def serve(entry: dict[str, Any], settings: Any, *, timeout: float = 600, progress: bool = True) -> Served:
    """Serve a registry entry from :func:`resolve_production` on the backend ``settings`` name.

    Local: load the file its URI points to. Cluster: :func:`deploy` it with KServe and wait until Ready.
    """
    if settings.backend == "cluster":
        return deploy(entry, settings, timeout=timeout, progress=progress)
    model = load_model(entry["uri"])
    # A local run cannot know where a cluster run would store the model: KFP lays artifacts out by pipeline,
    # run and task. The manifest shows that layout with its parts left as <placeholders>.
    cluster_form = dict(entry, uri=CLUSTER_URI_SHAPE)
    manifest = serving_manifest(cluster_form, namespace="kubeflow", service_account=SERVING_ACCOUNT)
    return Served("local", unquote_path(serving_uri(entry["uri"])["uri"]), manifest, model.predict)


def unquote_path(file_uri: str) -> str:
    from urllib.parse import unquote

    return unquote(urlparse(file_uri).path)


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

    from mrhelpers.cluster import kube_client
    from mrhelpers.progress import Progress

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
    from mrhelpers.localstack import _free_port

    port = _free_port()
    command = ["kubectl", "-n", namespace, "port-forward", "--address", "127.0.0.1", target, f"{port}:{remote_port}"]
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except FileNotFoundError:
        raise MRHelpersError("kubectl is not on PATH; install it (see the README's cluster section).") from None
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
