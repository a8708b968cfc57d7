"""URI conversion and the KServe manifest builder."""

import pytest

from mrhelpers import InvalidInput
from mrhelpers.authoring.uris import serving_uri
from mrhelpers.backends.serving import SERVING_ACCOUNT, serving_manifest

ENTRY = {"model": "Churn_Model", "model_id": "3", "version": "v1.2", "version_id": "9",
         "uri": "minio://mlpipeline/v2/artifacts/run/model", "format": "sklearn", "format_version": "1"}  # fmt: skip


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "minio://mlpipeline/v2/artifacts/x/model",
            {"uri": "s3://mlpipeline/v2/artifacts/x/model", "s3_endpoint": "http://e:9000"},
        ),
        ("s3://bucket/key", {"uri": "s3://bucket/key", "s3_endpoint": "http://e:9000"}),
        ("gs://bucket/model", {"uri": "gs://bucket/model"}),
        ("oci://quay.io/org/model:1", {"uri": "oci://quay.io/org/model:1"}),
        ("pvc://claim/path/model.joblib", {"uri": "pvc://claim/path/model.joblib"}),
        ("/tmp/run/model", {"uri": "file:///tmp/run/model"}),
        ("file:///tmp/run/model", {"uri": "file:///tmp/run/model"}),
    ],
)
def test_serving_uri(uri, expected):
    assert serving_uri(uri, s3_endpoint="http://e:9000") == expected


@pytest.mark.parametrize("uri", ["", "relative/model", "minio://", "s3:///key", "ftp://host/model", "gs://", None])
def test_serving_uri_refuses_what_no_runtime_fetches(uri):
    with pytest.raises(InvalidInput):
        serving_uri(uri)


def test_manifest_links_back_and_points_at_s3():
    m = serving_manifest(ENTRY, namespace="team-a", s3_endpoint="https://minio.example:9000")
    assert m["kind"] == "InferenceService" and m["apiVersion"] == "serving.kserve.io/v1beta1"
    assert m["metadata"]["name"] == "churn-model-v1-2" and m["metadata"]["namespace"] == "team-a"
    assert m["metadata"]["labels"] == {"modelregistry/registered-model-id": "3", "modelregistry/model-version-id": "9"}
    assert m["metadata"]["annotations"] == {"serving.kserve.io/deploymentMode": "RawDeployment"}
    predictor = m["spec"]["predictor"]
    assert predictor["model"] == {
        "modelFormat": {"name": "sklearn", "version": "1"},
        "storageUri": "s3://mlpipeline/v2/artifacts/run/model",
    }
    assert predictor["serviceAccountName"] == SERVING_ACCOUNT  # the account that carries the object-store keys
    named = serving_manifest({**ENTRY, "model": "A_b", "version": "v1.0"})
    assert named["metadata"]["name"] == "a-b-v1-0"


@pytest.mark.parametrize(
    ("change", "match"),
    [({"format": "pickle"}, "format"), ({"uri": "file:///tmp/m"}, "not a local file"), ({"uri": "ftp://h/m"}, "uri")],
)
def test_manifest_refuses_what_kserve_cannot_serve(change, match):
    with pytest.raises(InvalidInput, match=match):
        serving_manifest({**ENTRY, **change})
