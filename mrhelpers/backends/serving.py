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

import dataclasses
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mrhelpers.authoring.training import model_file
from mrhelpers.authoring.uris import DEFAULT_MINIO_ENDPOINT, serving_uri
from mrhelpers.core.errors import InvalidInput
from mrhelpers.core.inspection import versions_frame
from mrhelpers.core.registry import PRODUCTION_KEY
from mrhelpers.core.rest import session_for

if TYPE_CHECKING:
    from model_registry import ModelRegistry

# KServe's model format names for the formats this project registers.
KSERVE_FORMATS = {"sklearn": "sklearn", "xgboost": "xgboost", "onnx": "onnx", "tensorflow": "tensorflow",
                  "pytorch": "pytorch", "lightgbm": "lightgbm", "huggingface": "huggingface"}  # fmt: skip
SERVING_ACCOUNT = "mrh-model-serving"
"""The ServiceAccount the InferenceService runs as; it carries the object-store Secret."""
S3_SECRET = "mrh-s3-credentials"  # noqa: S105 - a name
KFP_S3_SECRET = "mlpipeline-minio-artifact"  # noqa: S105 - KFP's own Secret (keys accesskey, secretkey)
ISVC_API = ("serving.kserve.io", "v1beta1", "inferenceservices")


CLUSTER_URI_SHAPE = "minio://mlpipeline/v2/artifacts/<pipeline name>/<run id>/<task name>/<artifact id>/model"
"""Where KFP (2.x, default pipeline root) stores a task's output Model on a cluster, with its parts unfilled."""


def resolve_production(registry: ModelRegistry, name: str) -> dict[str, Any]:
    """The production version of model ``name``: ids, version name, URI, format and metadata.

    Raises:
        InvalidInput: The model does not exist or has no production version.
    """
    frame = versions_frame(registry, name)
    if frame.empty:
        raise InvalidInput("model", name, "the name of a registered model with versions")
    session = session_for(registry)
    model = session.find_model(name)
    prod = frame[frame.stage == "production"]
    if prod.empty:
        pointed = frame[frame.version_id == str((model.custom_properties or {}).get(PRODUCTION_KEY))]
        if not pointed.empty and pointed.iloc[0].state == "ARCHIVED":  # set so by another tool, or a race
            raise InvalidInput(
                "model", name, f"a model whose production version is LIVE: its production pointer names "
                f"{pointed.iloc[0].version!r}, which is ARCHIVED, and an archived version is never served. "
                f"restore_version(registry, {name!r}, {pointed.iloc[0].version!r}) and promote it again with "
                "set_stage(), or promote another version",
            )  # fmt: skip
        raise InvalidInput("model", name, "a model with a production version: promote one with set_stage() first")
    row = prod.iloc[-1]
    model_id = model.id
    # What is served comes from the artifact as stored now: the frame masks credentials in the URI,
    # and shows the artifact's fields as registered (another tool may have changed them since).
    artifact = session.model_artifact(row.version_id)
    if artifact is None:
        raise InvalidInput("model", name, f"a production version with a model artifact ({row.version} has none)")
    return {
        "model": name, "model_id": model_id, "version": row.version, "version_id": row.version_id,
        "uri": artifact.uri, "format": artifact.model_format_name, "format_version": artifact.model_format_version,
        "metadata": row.metadata,
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
    return settings.backend_impl().serve(entry, settings, timeout=timeout, progress=progress)


def serve_here(entry: dict[str, Any]) -> Served:
    """Load the model file ``entry``'s URI points to in this process, with the manifest a cluster would apply."""
    model = load_model(entry["uri"])
    # A local run cannot know where a cluster run would store the model: KFP lays artifacts out by pipeline,
    # run and task. The manifest shows that layout with its parts left as <placeholders>.
    cluster_form = dict(entry, uri=CLUSTER_URI_SHAPE)
    manifest = serving_manifest(cluster_form, namespace="kubeflow", service_account=SERVING_ACCOUNT)
    return Served("local", unquote_path(serving_uri(entry["uri"])["uri"]), manifest, model.predict)


def unquote_path(file_uri: str) -> str:
    from urllib.parse import unquote

    return unquote(urlparse(file_uri).path)
