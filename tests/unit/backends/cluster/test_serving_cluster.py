"""serve() locally loads the file and shows the manifest a cluster would get.
deploy() against a real kube-apiserver: tests/kube/test_kube_serving.py.
"""

import pytest

from mrhelpers import Settings
from mrhelpers.authoring.training import evaluate, train_to
from mrhelpers.backends.serving import serve


def entry(uri):
    return {"model": "tutorial-classifier", "model_id": "1", "version": "lr-strong", "version_id": "4", "uri": uri,
            "format": "sklearn", "format_version": "1",
            "metadata": {"accuracy": 0.979021, "s3_endpoint": "http://seaweedfs.kubeflow:9000"}}  # fmt: skip


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "model"
    train_to(str(folder), dataset="breast_cancer", c=1.0, max_iter=500, seed=7)
    return folder


def test_local_serve_loads_the_file_and_shows_the_cluster_manifest(model_dir, tmp_path):
    served = serve(entry(model_dir.as_uri()), Settings(state_dir=tmp_path))
    assert served.backend == "local" and served.where == str(model_dir)
    assert evaluate(served, "breast_cancer", 7)["accuracy"] == pytest.approx(0.979021, abs=1e-6)
    assert served.manifest["spec"]["predictor"]["model"]["storageUri"].startswith("s3://mlpipeline/")
