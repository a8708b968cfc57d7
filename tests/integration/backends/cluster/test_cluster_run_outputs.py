"""submit on a cluster, end of the run: the outputs come back from the real registry.

The KFP API is the stub of tests/unit/backends/cluster/kfp_api_stub.py (no cluster runs here); the registry is the real
server the session started. What a run registered is found by its run id, like a reader would.
"""

import uuid

import mrhelpers as mh
from mrhelpers.authoring.pipelines import model_registration_pipeline
from tests.unit.backends.cluster.kfp_api_stub import KfpApi

FMT = dict(model_format_name="sklearn", model_format_version="1")


def cluster_settings(stack, api):
    return stack.replace(
        backend="cluster", kfp_host=api.url, kfp_ui_url="http://127.0.0.1:8080", namespace="kubeflow", poll_seconds=0.01
    )


def test_outputs_are_what_the_run_registered(stack):
    run_id, name = str(uuid.uuid4()), f"cluster-{uuid.uuid4().hex[:8]}"
    registry = mh.connect(stack)
    # What the register-model task does inside the run, with the lineage KFP's placeholders give it.
    lineage = mh.Lineage.for_kfp_run(run_id, f"model-registration-{run_id[:5]}", "kubeflow")
    made = mh.register_version(registry, name, "v1", "minio://mlpipeline/v2/artifacts/x/model", **FMT, lineage=lineage)
    with KfpApi(states=["RUNNING", "SUCCEEDED"]) as api:
        api.next_run_id = run_id
        args = dict(model_name=name, version_name="v1", model_uri="minio://x", author="t", registry_url="http://r")
        run = mh.submit(model_registration_pipeline, args, cluster_settings(stack, api)).wait(progress=False)
    assert run.state == "SUCCEEDED" and run.run_id == run_id
    out = run.outputs
    assert (out["model_id"], out["version_id"], out["version_name"]) == (made.model_id, made.version_id, "v1")
    assert out["model"]["metadata"]["model_artifact_id"] == made.artifact_id
    assert out["model"]["uri"] == "minio://mlpipeline/v2/artifacts/x/model"
    assert run.run_name == f"model-registration-{run_id[:5]}"  # the name the tasks saw, from the lineage
    assert mh.last_run(cluster_settings(stack, api))["run_id"] == run_id


def test_a_run_that_registered_nothing_has_only_its_ids(stack):
    with KfpApi(states=["SUCCEEDED"]) as api:
        args = dict(model_name="x", version_name="v1", model_uri="minio://x", author="t", registry_url="http://r")
        run = mh.submit(model_registration_pipeline, args, cluster_settings(stack, api)).wait(progress=False)
    assert run.outputs == {"run_id": run.run_id}


def test_outputs_keep_the_exact_uri_that_frames_mask(stack):
    """The frames mask credentials for display; a run's outputs are data and carry the URI as stored."""
    run_id, name = str(uuid.uuid4()), f"cluster-{uuid.uuid4().hex[:8]}"
    uri = "s3://AKIAEXAMPLE:not-a-real-secret@objects.local/bucket/model"
    registry = mh.connect(stack)
    mh.register_version(registry, name, "v1", uri, **FMT, lineage=mh.Lineage.for_kfp_run(run_id, "r", "kubeflow"))
    assert "not-a-real-secret" not in mh.find_versions(registry, run_id=run_id).iloc[0]["uri"]
    with KfpApi(states=["SUCCEEDED"]) as api:
        api.next_run_id = run_id
        args = dict(model_name=name, version_name="v1", model_uri="minio://x", author="t", registry_url="http://r")
        run = mh.submit(model_registration_pipeline, args, cluster_settings(stack, api)).wait(progress=False)
    assert run.outputs["model"]["uri"] == uri and run.outputs["model"]["metadata"]["model_uri"] == uri
