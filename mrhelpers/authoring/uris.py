"""Artifact URIs as KFP writes them, turned into ones a serving runtime can fetch."""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import urlparse

from mrhelpers.core.errors import InvalidInput

DEFAULT_MINIO_ENDPOINT = "http://seaweedfs.kubeflow:9000"
"""KFP's object store service in namespace kubeflow (what ``minio://`` URIs point at)."""
FETCHABLE = ("gs", "oci", "pvc", "hf", "https", "http", "file")


def serving_uri(uri: str, *, s3_endpoint: str = DEFAULT_MINIO_ENDPOINT) -> dict[str, str]:
    """``{"uri": ...}`` a serving runtime can fetch (plus ``s3_endpoint`` for S3): ``minio://bucket/key`` becomes
    ``s3://bucket/key`` at ``s3_endpoint``, an absolute path ``file://``, the schemes listed below pass unchanged;
    :class:`InvalidInput` for anything else."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInput("uri", uri, "a non-empty artifact URI")
    if uri.startswith("/"):
        return {"uri": PurePosixPath(uri).as_uri()}
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme in ("minio", "s3"):
        if not parsed.netloc:
            raise InvalidInput("uri", uri, f"{scheme}://<bucket>/<key>")
        return {"uri": f"s3://{parsed.netloc}{parsed.path}", "s3_endpoint": s3_endpoint}
    if scheme in FETCHABLE:
        if scheme != "file" and not parsed.netloc:
            raise InvalidInput("uri", uri, f"{scheme}://<location>")
        return {"uri": uri}
    raise InvalidInput("uri", uri, f"an absolute path or a URI with one of {', '.join(('minio', 's3', *FETCHABLE))}")
