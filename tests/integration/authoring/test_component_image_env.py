"""The component image's Python environment, without Docker: the Dockerfile's own pip line in a fresh venv.

No Docker engine runs here, so `docker build` cannot; but what the image holds is decided by one
`pip install` line. This test reads that line and its ARG defaults from the Dockerfile, installs them
into a new virtual environment, and runs what the cluster's components run: the imports the KFP
executor needs, then train -> evaluate with KServe's scikit-learn (the versions pinned for serving).
"""

import re
import subprocess
import sys
import venv

from mrhelpers.core.settings import versions
from tests.conftest import ROOT

DOCKERFILE = ROOT / "setup" / "component-image" / "Dockerfile"


def image_requirements() -> list[str]:
    text = DOCKERFILE.read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    line = re.search(r"^RUN pip install (.+?) &&", text, re.M).group(1)
    words = re.findall(r'"[^"]+"|\S+', line)
    return [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], w.strip('"')) for w in words]


def test_the_dockerfile_installs_the_pinned_serving_versions():
    reqs = image_requirements()
    v = versions()
    assert reqs[0] == "."
    assert f"scikit-learn=={v['SKLEARN_SERVING_VERSION']}" in reqs
    assert f"numpy=={v['NUMPY_SERVING_VERSION']}" in reqs and f"joblib=={v['JOBLIB_SERVING_VERSION']}" in reqs
    for name, key in (("kfp", "KFP_VERSION"), ("kfp-kubernetes", "KFP_KUBERNETES_VERSION"),
                      ("model-registry", "MODEL_REGISTRY_CLIENT_VERSION")):  # fmt: skip
        assert f"{name}=={v[key]}" in reqs, "pyproject has ranges only: the image pins what was tested"


def test_components_train_and_evaluate_in_the_image_environment(tmp_path):
    env_dir = tmp_path / "image-venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    reqs = [str(ROOT) if r == "." else r for r in image_requirements()]
    install = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *reqs],
                             capture_output=True, text=True, timeout=900)  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    script = """
import json, sys, tempfile
import kfp, kfp.dsl.executor_main, model_registry, sklearn, numpy, joblib, mrhelpers
from mrhelpers.authoring.training import train_to, evaluate_file
folder = tempfile.mkdtemp() + "/model"
train_to(folder, dataset="breast_cancer", c=1.0, max_iter=500, seed=7)
print(json.dumps({"sklearn": sklearn.__version__, "numpy": numpy.__version__, "joblib": joblib.__version__,
                  "kfp": kfp.__version__, "model_registry": model_registry.__version__,
                  "scores": evaluate_file(folder, "breast_cancer", 7)}))
"""
    out = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    got = __import__("json").loads(out.stdout.strip().splitlines()[-1])
    v = versions()
    assert (got["sklearn"], got["numpy"], got["joblib"]) == (
        v["SKLEARN_SERVING_VERSION"], v["NUMPY_SERVING_VERSION"], v["JOBLIB_SERVING_VERSION"])  # fmt: skip
    assert got["kfp"] == v["KFP_VERSION"] and got["model_registry"] == v["MODEL_REGISTRY_CLIENT_VERSION"]
    assert got["scores"]["accuracy"] > 0.95, got
    print(f"image environment: {got}", file=sys.stderr)
