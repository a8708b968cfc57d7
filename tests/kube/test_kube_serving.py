"""serve()/deploy() on a cluster against the real API server.

KServe's own CRD cannot be fetched here (no GitHub), so:
* without any InferenceService API, the call path runs up to the API server's real answer for an
  unknown kind (HTTP 404), which is exactly what a cluster without KServe gives;
* with a minimal CRD of the same group, version and kind that this test registers (ours, not
  KServe's schema: any spec is accepted), the create, the merge-patch of a re-run and the status
  reads run through the real apiextensions machinery. A thread plays KServe's controller by writing
  the Ready condition through the status subresource; predictions go through the stub `kubectl
  port-forward` of cluster_stubs (it answers KServe's V1 protocol with a real scikit-learn model).
"""

import base64
import json
import os
import threading
import time

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from mrhelpers import MRHelpersError, Settings
from mrhelpers.authoring.training import evaluate, train_to
from mrhelpers.backends.cluster.kserve import ISVC_API, KFP_S3_SECRET, S3_SECRET, deploy
from mrhelpers.backends.serving import SERVING_ACCOUNT, serve
from tests.unit.backends.cluster import cluster_stubs

GROUP, VERSION, PLURAL = ISVC_API
CRD = f"{PLURAL}.{GROUP}"
KEYS = {"accesskey": "minio-user", "secretkey": "minio-secret-123"}
NAME = "tutorial-classifier-lr-strong"


def entry(uri):
    return {"model": "tutorial-classifier", "model_id": "1", "version": "lr-strong", "version_id": "4", "uri": uri,
            "format": "sklearn", "format_version": "1",
            "metadata": {"accuracy": 0.979021, "s3_endpoint": "http://seaweedfs.kubeflow:9000"}}  # fmt: skip


@pytest.fixture
def kfp_namespace(core, namespace):
    """A namespace holding KFP's object-store Secret, as KFP's install leaves it."""
    core.create_namespaced_secret(namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=KFP_S3_SECRET),
                                                             string_data=KEYS))  # fmt: skip
    return namespace


def settings(tmp_path, ns):
    return Settings(backend="cluster", namespace=ns, state_dir=tmp_path, poll_seconds=0.05)


def crd_served() -> bool:
    try:
        client.ApiextensionsV1Api().read_custom_resource_definition(CRD)
        return True
    except ApiException as exc:
        assert exc.status == 404
        return False


def test_without_kserve_the_server_answers_404_and_the_message_says_install_it(kfp_namespace, core, tmp_path):
    assert not crd_served()
    with pytest.raises(
        MRHelpersError, match=r"Applying InferenceService .* \(HTTP 404\).*setup/cluster.sh up --with-kserve"
    ):
        deploy(entry("s3://b/k"), settings(tmp_path, kfp_namespace), progress=False)
    # What came before the InferenceService was applied for real: the Secret with KFP's keys and the account.
    secret = core.read_namespaced_secret(S3_SECRET, kfp_namespace)
    stored = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
    assert stored == {"AWS_ACCESS_KEY_ID": "minio-user", "AWS_SECRET_ACCESS_KEY": "minio-secret-123"}
    assert secret.metadata.annotations["serving.kserve.io/s3-endpoint"] == "seaweedfs.kubeflow:9000"
    assert secret.metadata.annotations["serving.kserve.io/s3-usehttps"] == "0"
    assert [s.name for s in core.read_namespaced_service_account(SERVING_ACCOUNT, kfp_namespace).secrets] == [S3_SECRET]


def test_an_https_object_store_is_used_with_tls(kfp_namespace, core, tmp_path):
    https = dict(entry("s3://b/k"), metadata={"s3_endpoint": "https://objects.example:443"})
    with pytest.raises(MRHelpersError, match=r"\(HTTP 404\)"):  # no KServe here: the Secret is applied first
        deploy(https, settings(tmp_path, kfp_namespace), progress=False)
    annotations = core.read_namespaced_secret(S3_SECRET, kfp_namespace).metadata.annotations
    assert annotations["serving.kserve.io/s3-endpoint"] == "objects.example:443"
    assert annotations["serving.kserve.io/s3-usehttps"] == annotations["serving.kserve.io/s3-verifyssl"] == "1"


def test_missing_kfp_secret_is_the_servers_404(namespace, tmp_path):
    with pytest.raises(MRHelpersError, match=rf"KFP's Secret {namespace}/{KFP_S3_SECRET} \(404\)"):
        deploy(entry("s3://b/k"), settings(tmp_path, namespace), progress=False)


@pytest.fixture
def isvc_api(kubeconfig):
    """A minimal InferenceService CRD (our schema, KServe's group/version/kind), removed after the test."""
    ext = client.ApiextensionsV1Api()
    ext.create_custom_resource_definition({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": CRD},
        "spec": {"group": GROUP, "scope": "Namespaced",
                 "names": {"plural": PLURAL, "singular": "inferenceservice", "kind": "InferenceService"},
                 "versions": [{"name": VERSION, "served": True, "storage": True, "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]},
    })  # fmt: skip
    deadline = time.monotonic() + 30
    while not any(c.type == "Established" and c.status == "True"
                  for c in (ext.read_custom_resource_definition(CRD).status.conditions or [])):  # fmt: skip
        assert time.monotonic() < deadline, "the CRD was not Established in 30 s"
        time.sleep(0.1)
    yield client.CustomObjectsApi()
    ext.delete_custom_resource_definition(CRD)
    while crd_served() and time.monotonic() < deadline + 60:
        time.sleep(0.2)


def play_controller(custom, ns, name, stop: threading.Event):
    """KServe's controller, as far as deploy() sees it: Ready=False for a while, then Ready=True."""
    first = None
    while not stop.is_set():
        try:
            custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
        except ApiException:
            time.sleep(0.05)
            continue
        first = first or time.monotonic()
        ready = time.monotonic() - first > 0.5
        condition = {"type": "Ready", "status": str(ready), "reason": "" if ready else "PredictorNotReady",
                     "message": "" if ready else "storage-initializer: downloading"}  # fmt: skip
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, ns, PLURAL, name, {"status": {"conditions": [condition]}}
        )
        if ready:
            return
        time.sleep(0.1)


@pytest.fixture
def predictor(tmp_path_factory, tmp_path, monkeypatch):
    """Stub kubectl on PATH whose port-forward to <name>-predictor answers with a real trained model."""
    folder = tmp_path_factory.mktemp("model") / "model"
    train_to(str(folder), dataset="breast_cancer", c=1.0, max_iter=500, seed=7)
    bin_dir = tmp_path / "bin"
    cluster_stubs.install(bin_dir)
    (tmp_path / "scenario.json").write_text(json.dumps({"predictor_model": str(folder / "model.joblib")}))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("STUB_LOG", str(tmp_path / "calls.jsonl"))
    monkeypatch.setenv("STUB_STATE", str(tmp_path / "state.json"))
    monkeypatch.setenv("STUB_SCENARIO", str(tmp_path / "scenario.json"))


def test_deploy_creates_waits_for_ready_predicts_and_patches_on_a_rerun(isvc_api, kfp_namespace, predictor, tmp_path):
    ns, uri = kfp_namespace, "s3://mlpipeline/v2/artifacts/train-evaluate-register/run-1/train-model/abc/model"
    stop = threading.Event()
    controller = threading.Thread(target=play_controller, args=(isvc_api, ns, NAME, stop), daemon=True)
    controller.start()
    try:
        served = serve(entry(uri), settings(tmp_path, ns), timeout=60, progress=False)
    finally:
        stop.set()
        controller.join(10)
    assert served.where == f"{ns}/{NAME}"
    isvc = isvc_api.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, NAME)
    assert isvc["spec"]["predictor"]["serviceAccountName"] == SERVING_ACCOUNT
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == uri
    assert isvc["metadata"]["labels"]["modelregistry/model-version-id"] == "4"
    assert evaluate(served, "breast_cancer", 7)["accuracy"] == pytest.approx(0.979021, abs=1e-6)

    generation = isvc["metadata"]["generation"]
    other = uri.replace("run-1", "run-2")
    again = serve(entry(other), settings(tmp_path, ns), timeout=5, progress=False)  # a re-run: merge patch
    isvc = isvc_api.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, NAME)
    assert again.where == served.where and isvc["spec"]["predictor"]["model"]["storageUri"] == other
    assert isvc["metadata"]["generation"] == generation + 1 and isvc["status"]["conditions"][0]["status"] == "True"
    applied = {(m["manager"], m["operation"]) for m in isvc["metadata"]["managedFields"]}
    assert ("mrhelpers", "Apply") in applied  # server-side apply: created, then updated, by one call each


def test_not_ready_in_time_names_the_last_condition(isvc_api, kfp_namespace, tmp_path):
    ns = kfp_namespace
    isvc_api.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "InferenceService", "metadata": {"name": NAME},
        "spec": {}})  # fmt: skip
    isvc_api.patch_namespaced_custom_object_status(GROUP, VERSION, ns, PLURAL, NAME, {"status": {"conditions": [
        {"type": "Ready", "status": "False", "reason": "PredictorNotReady"}]}})  # fmt: skip
    with pytest.raises(MRHelpersError, match=rf"not Ready after 0 s \(last: PredictorNotReady\)"
                       rf".*kubectl -n {ns} describe inferenceservice {NAME}"):  # fmt: skip
        deploy(entry("s3://b/k"), settings(tmp_path, ns), timeout=0, progress=False)
