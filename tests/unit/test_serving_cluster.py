"""serve()/deploy() on a cluster, at their boundaries: the Kubernetes API (a stub on 127.0.0.1 that
stores objects and plays KServe's Ready condition) and `kubectl port-forward` (a stub on PATH that
answers KServe's V1 protocol with a real scikit-learn model). Locally, serve() loads the file.
"""

import base64
import json

import pytest

import mrhelpers as mh
from mrhelpers import MRHelpersError, Settings
from mrhelpers.serving import S3_SECRET, SERVING_ACCOUNT, deploy, s3_access_manifests, serve
from mrhelpers.training import evaluate, load_split, train_to
from tests import cluster_stubs
from tests.k8s_api_stub import KubeApi

ISVC = "/apis/serving.kserve.io/v1beta1/namespaces/kubeflow/inferenceservices"
KEYS = {"accesskey": "minio-user", "secretkey": "minio-secret-123"}


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    monkeypatch.setenv("MRH_POLL_SECONDS", "0.01")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "model"
    train_to(str(folder), dataset="breast_cancer", c=1.0, max_iter=500, seed=7)
    return folder


def entry(uri):
    return {"model": "tutorial-classifier", "model_id": "1", "version": "lr-strong", "version_id": "4", "uri": uri,
            "format": "sklearn", "format_version": "1",
            "metadata": {"accuracy": 0.979021, "s3_endpoint": "http://seaweedfs.kubeflow:9000"}}  # fmt: skip


@pytest.fixture
def kube(tmp_path, monkeypatch, model_dir):
    bin_dir = tmp_path / "bin"
    cluster_stubs.install(bin_dir)
    (tmp_path / "scenario.json").write_text(json.dumps({"predictor_model": str(model_dir / "model.joblib")}))
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("STUB_LOG", str(tmp_path / "calls.jsonl"))
    monkeypatch.setenv("STUB_STATE", str(tmp_path / "state.json"))
    monkeypatch.setenv("STUB_SCENARIO", str(tmp_path / "scenario.json"))
    with KubeApi() as api:
        api.put("/api/v1/namespaces/kubeflow/secrets/mlpipeline-minio-artifact",
                {"metadata": {"name": "mlpipeline-minio-artifact"},
                 "data": {k: base64.b64encode(v.encode()).decode() for k, v in KEYS.items()}})  # fmt: skip
        monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path / "kubeconfig")))
        yield api


def becomes_ready_after(reads):
    seen = {"n": 0}

    def controller(obj):
        seen["n"] += 1
        ready = seen["n"] > reads
        why = "" if ready else "PredictorNotReady: storage-initializer"
        obj["status"] = {"conditions": [{"type": "Ready", "status": str(ready), "reason": why}]}
        return obj

    return controller


def settings(tmp_path):
    return Settings(backend="cluster", namespace="kubeflow", state_dir=tmp_path)


def test_deploy_applies_access_and_service_waits_and_predicts(kube, tmp_path, capsys):
    name = "tutorial-classifier-lr-strong"
    kube.on_get[f"{ISVC}/{name}"] = becomes_ready_after(2)
    uri = "s3://mlpipeline/v2/artifacts/train-evaluate-register/run-1/train-model/abc/model"
    served = serve(entry(uri), settings(tmp_path))
    assert served.backend == "cluster" and served.where == f"kubeflow/{name}"
    isvc = kube.objects[f"{ISVC}/{name}"]
    assert isvc["spec"]["predictor"]["serviceAccountName"] == SERVING_ACCOUNT
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == uri
    assert isvc["metadata"]["labels"]["modelregistry/model-version-id"] == "4"
    secret = kube.objects[f"/api/v1/namespaces/kubeflow/secrets/{S3_SECRET}"]
    stored = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert stored == {"AWS_ACCESS_KEY_ID": "minio-user", "AWS_SECRET_ACCESS_KEY": "minio-secret-123"}
    assert secret["metadata"]["annotations"]["serving.kserve.io/s3-endpoint"] == "seaweedfs.kubeflow:9000"
    account = kube.objects[f"/api/v1/namespaces/kubeflow/serviceaccounts/{SERVING_ACCOUNT}"]
    assert account["secrets"] == [{"name": S3_SECRET}]
    assert "minio-secret-123" not in capsys.readouterr().out + repr(served)
    scores = evaluate(served, "breast_cancer", 7)  # predictions through the port-forward
    assert scores["accuracy"] == pytest.approx(0.979021, abs=1e-6)
    _, x_test, _, _ = load_split("breast_cancer", 7)
    assert len(served.predict(x_test[:5])) == 5

    again = serve(entry(uri), settings(tmp_path))  # re-run: patches, does not fail on "exists"
    assert again.where == served.where
    assert ("PATCH", f"{ISVC}/{name}") in kube.calls


def test_not_ready_in_time_names_the_condition_and_the_commands(kube, tmp_path):
    kube.on_get[f"{ISVC}/tutorial-classifier-lr-strong"] = becomes_ready_after(10**6)
    with pytest.raises(MRHelpersError, match=r"not Ready after 0 s \(last: PredictorNotReady: storage-initializer\)"
                       r".*kubectl -n kubeflow describe inferenceservice"):  # fmt: skip
        deploy(entry("s3://b/k"), settings(tmp_path), timeout=0, progress=False)


def test_missing_kfp_secret_is_named(kube, tmp_path):
    del kube.objects["/api/v1/namespaces/kubeflow/secrets/mlpipeline-minio-artifact"]
    with pytest.raises(MRHelpersError, match=r"KFP's Secret kubeflow/mlpipeline-minio-artifact \(404\)"):
        deploy(entry("s3://b/k"), settings(tmp_path), progress=False)


def test_no_kserve_says_install_it(kube, tmp_path):
    kube.create = lambda path, body: (404, {"kind": "Status", "code": 404, "message": "the server could not find"}) \
        if "inferenceservices" in path else KubeApi.create(kube, path, body)  # fmt: skip
    with pytest.raises(MRHelpersError, match=r"HTTP 404.*setup/cluster.sh up --with-kserve"):
        deploy(entry("s3://b/k"), settings(tmp_path), progress=False)


def test_local_serve_loads_the_file_and_shows_the_cluster_manifest(model_dir, tmp_path):
    served = serve(entry(model_dir.as_uri()), Settings(state_dir=tmp_path))
    assert served.backend == "local" and served.where == str(model_dir)
    assert evaluate(served, "breast_cancer", 7)["accuracy"] == pytest.approx(0.979021, abs=1e-6)
    assert served.manifest["spec"]["predictor"]["model"]["storageUri"].startswith("s3://mlpipeline/")


def test_s3_access_manifests_carry_no_keys():
    secret, account = s3_access_manifests("team-a", "https://objects.example:443")
    assert "data" not in secret and "stringData" not in secret
    assert secret["metadata"]["annotations"]["serving.kserve.io/s3-usehttps"] == "1"
    assert account["secrets"] == [{"name": S3_SECRET}] and account["metadata"]["namespace"] == "team-a"
    assert mh.serving.isvc_name({"model": "A_b", "version": "v1.0"}) == "a-b-v1-0"
