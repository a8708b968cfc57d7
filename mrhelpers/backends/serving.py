"""From the registry to serving: the production version, its KServe InferenceService, and :func:`serve`."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from mrhelpers.authoring.training import model_file
from mrhelpers.authoring.uris import DEFAULT_MINIO_ENDPOINT, serving_uri
from mrhelpers.core.errors import InvalidInput
from mrhelpers.core.inspection import versions_frame
from mrhelpers.core.registry import PRODUCTION_KEY
from mrhelpers.core.rest import session_for

if TYPE_CHECKING:
    from model_registry import ModelRegistry

KSERVE_FORMATS = ("sklearn", "xgboost", "onnx", "tensorflow", "pytorch", "lightgbm", "huggingface")  # any case
SERVING_ACCOUNT = "mrh-model-serving"  # the InferenceService's ServiceAccount (on a cluster, with S3 keys)


def resolve_production(registry: ModelRegistry, name: str) -> dict[str, Any]:
    """Model ``name``'s production version: ids, name, URI, format, metadata; InvalidInput when none is live."""
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
    # The artifact as stored now: the frame masks credentials in the URI, and another tool may have changed it since.
    artifact = session.model_artifact(row.version_id)
    if artifact is None:
        raise InvalidInput("model", name, f"a production version with a model artifact ({row.version} has none)")
    return {
        "model": name, "model_id": model.id, "version": row.version, "version_id": row.version_id,
        "uri": artifact.uri, "format": artifact.model_format_name, "format_version": artifact.model_format_version,
        "metadata": row.metadata,
    }  # fmt: skip


def serving_manifest(
    entry: dict[str, Any], *, namespace: str = "kubeflow", s3_endpoint: str = DEFAULT_MINIO_ENDPOINT
) -> dict[str, Any]:
    """The KServe ``InferenceService`` (not applied) for an entry of :func:`resolve_production`; InvalidInput for
    a format KServe has no runtime for, or a URI it cannot fetch."""
    fmt = str(entry.get("format") or "").lower()
    if fmt not in KSERVE_FORMATS:
        raise InvalidInput("model format", entry.get("format"), f"one KServe serves: {', '.join(KSERVE_FORMATS)}")
    uri = serving_uri(entry["uri"], s3_endpoint=s3_endpoint)["uri"]
    if uri.startswith("file://"):
        raise InvalidInput(
            "uri", entry["uri"], "a URI the cluster can fetch (s3://, gs://, oci://, pvc://): not a local file"
        )
    name = f"{entry['model']}-{entry['version']}".lower().replace(".", "-").replace("_", "-")[:63].strip("-")
    version = {"version": entry["format_version"]} if entry.get("format_version") else {}
    model = {"modelFormat": {"name": fmt, **version}, "storageUri": uri}
    labels = {"modelregistry/registered-model-id": str(entry["model_id"]),
              "modelregistry/model-version-id": str(entry["version_id"])}  # fmt: skip
    # KServe v0.20 calls this mode "Standard" and still accepts the older name, which earlier releases need.
    annotations = {"serving.kserve.io/deploymentMode": "RawDeployment"}
    return {
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations},
        "spec": {"predictor": {"model": model, "serviceAccountName": SERVING_ACCOUNT}},
    }  # fmt: skip


@dataclasses.dataclass
class Served:
    """A model being served (``where``: its file or ``namespace/name``); ``predict(rows)``: one value per row."""

    backend: str
    where: str
    manifest: dict[str, Any]
    _predict: Any = dataclasses.field(repr=False, default=None)

    def predict(self, rows: Any) -> list[Any]:
        """Predictions for ``rows`` (a 2-D array or list of lists), as plain Python values."""
        out = self._predict(rows)
        return out.tolist() if hasattr(out, "tolist") else list(out)


def serve(entry: dict[str, Any], settings: Any, *, timeout: float = 600, progress: bool = True) -> Served:
    """Serve an entry from :func:`resolve_production`: locally load its file; on a cluster apply and await it."""
    return settings.backend_impl().serve(entry, settings, timeout=timeout, progress=progress)


def serve_here(entry: dict[str, Any]) -> Served:
    """Load ``entry``'s joblib file here, with the manifest a cluster run would get (its URI's parts as ``<...>``)."""
    import joblib

    uri = serving_uri(entry["uri"])["uri"]
    if not uri.startswith("file://"):
        raise InvalidInput("uri", entry["uri"], "a file:// URI or an absolute path (the local backend loads files)")
    path = unquote(urlparse(uri).path)
    shape = "minio://mlpipeline/v2/artifacts/<pipeline name>/<run id>/<task name>/<artifact id>/model"  # KFP 2.x
    manifest = serving_manifest(dict(entry, uri=shape))
    return Served("local", path, manifest, joblib.load(model_file(path)).predict)
