"""Notebook 07: from a registry entry to serving.

Resolve "the production version of model X" to its artifact, turn KFP's
artifact URIs into ones a serving runtime can fetch, and build the KServe
InferenceService manifest for it (returned for review; applying it is the
cluster backend's job).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mrhelpers.errors import InvalidInput

if TYPE_CHECKING:
    from model_registry import ModelRegistry

# KServe's model format names for the formats this project registers.
KSERVE_FORMATS = {"sklearn": "sklearn", "xgboost": "xgboost", "onnx": "onnx", "tensorflow": "tensorflow",
                  "pytorch": "pytorch", "lightgbm": "lightgbm", "huggingface": "huggingface"}  # fmt: skip
DEFAULT_MINIO_ENDPOINT = "http://seaweedfs.kubeflow:9000"


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
        "uri": row.uri, "format": row.format, "format_version": row.format_version, "metadata": row.metadata,
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
    UI lists deployments by them). Nothing is applied.

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
    name = f"{entry['model']}-{entry['version']}".lower().replace(".", "-").replace("_", "-")[:63].strip("-")
    annotations = {"serving.kserve.io/deploymentMode": "RawDeployment"}
    if "s3_endpoint" in where:
        annotations["serving.kserve.io/s3-endpoint"] = urlparse(where["s3_endpoint"]).netloc
        annotations["serving.kserve.io/s3-usehttps"] = "1" if where["s3_endpoint"].startswith("https") else "0"
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
    from urllib.parse import unquote

    from mrhelpers.training import model_file

    return joblib.load(model_file(unquote(urlparse(where).path)))
