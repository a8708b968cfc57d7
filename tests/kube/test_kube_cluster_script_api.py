"""setup/cluster.sh's steps that need only a Kubernetes API, run for real: the script is sourced and
single steps run with the kubectl that `make tools` built, against the session's kube-apiserver
(through a kubeconfig whose context is the one the script uses, kind-mrhelpers). kind and docker,
which cannot run here, stay stubbed in tests/unit/backends/cluster/test_cluster_script.py."""

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from mrhelpers.core.settings import default_bin_dir

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "setup" / "cluster.sh"
CONFIG = ROOT / "setup" / "kserve" / "inferenceservice-config.yaml"


@pytest.fixture
def script_env(control_plane, kubeconfig, tmp_path):
    path = tmp_path / "kind.kubeconfig"
    config = json.loads(kubeconfig.read_text())
    config["contexts"][0]["name"] = config["current-context"] = "kind-mrhelpers"
    path.write_text(json.dumps(config))
    return {"PATH": f"{default_bin_dir()}:/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": str(path),
            "MRH_CLUSTER_STATE": str(tmp_path / "state"), "MRH_RETRY_DELAY": "1", "MRH_WAIT_TIMEOUT": "60"}  # fmt: skip


def step(env, code, **more):
    """Run bash code after sourcing setup/cluster.sh (its functions, none of its commands)."""
    return subprocess.Popen(["bash", "-c", f"source {SCRIPT} && {code}"], env={**env, **more}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def kubectl(env, *args, stdin=None):
    return subprocess.run([str(default_bin_dir() / "kubectl"), "--context", "kind-mrhelpers", *args], env=env,
                          input=stdin, capture_output=True, text=True, timeout=60)  # fmt: skip


def test_the_built_kubectl_is_the_pinned_version(script_env):
    from mrhelpers.core.settings import versions

    shown = json.loads(kubectl(script_env, "version", "-o", "json").stdout)
    assert (
        shown["clientVersion"]["gitVersion"] == shown["serverVersion"]["gitVersion"] == versions()["KUBE_TEST_VERSION"]
    )


def test_applying_into_the_profile_namespace_waits_until_it_exists(script_env, core):
    """Issue 17 (8): the profile controller creates the namespace later; the script waits for it."""
    ns = f"profile-{int(time.time() * 1000) % 10**8}"
    waiting = step(script_env, f"wait_namespace {ns}")
    said = [waiting.stdout.readline() for _ in range(2)]  # blocks until the script has looked once and says it waits
    assert (
        said[0].startswith(f"+ waiting for namespace {ns}") and f"namespace {ns} does not exist yet after 0s" in said[1]
    )
    assert waiting.poll() is None  # still waiting: the namespace is not there
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 0, err
    assert f"namespace {ns} exists" in out
    core.delete_namespace(ns)

    never = step(script_env, "wait_namespace no-such-profile", MRH_WAIT_TIMEOUT="0")
    out, err = never.communicate(timeout=30)
    assert never.returncode == 1 and "namespace no-such-profile does not exist after 0s" in err
    assert "get profiles" in err and "setup/cluster.sh up again" in err


def test_the_namespace_step_creates_once_then_keeps(script_env, core):
    ns = f"step-{int(time.time() * 1000) % 10**8}"
    for expected in (f"namespace/{ns} created", f"namespace {ns} exists; keeping it."):
        created = step(script_env, f"ensure_namespace {ns}")
        out, err = created.communicate(timeout=30)
        assert created.returncode == 0 and expected in out, (out, err)
    assert core.read_namespace(ns).status.phase == "Active"
    core.delete_namespace(ns)


@pytest.fixture
def kserve_namespace(core):
    if not core.list_namespace(field_selector="metadata.name=kserve").items:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="kserve")))
    yield "kserve"
    core.delete_namespaced_config_map("inferenceservice-config", "kserve")


UPSTREAM = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "inferenceservice-config", "namespace": "kserve"},
    "data": {"deploy": '{"defaultDeploymentMode":"Serverless"}', "storageInitializer": '{"memoryLimit":"1Gi"}'},
}


def test_the_old_patch_made_a_rerun_conflict(script_env, kserve_namespace):
    """Issue 17 (5), reproduced: kserve.yaml applied server-side, the field patched, kserve.yaml applied again."""
    upstream = yaml.safe_dump(UPSTREAM)
    assert kubectl(script_env, "apply", "--server-side", "-f", "-", stdin=upstream).returncode == 0
    patch = kubectl(script_env, "-n", "kserve", "patch", "configmap", "inferenceservice-config", "--type=strategic",
                    "-p", '{"data":{"deploy":"{\\"defaultDeploymentMode\\":\\"Standard\\"}"}}')  # fmt: skip
    assert patch.returncode == 0, patch.stderr
    rerun = kubectl(script_env, "apply", "--server-side", "-f", "-", stdin=upstream)
    assert rerun.returncode != 0 and "conflict" in rerun.stderr.lower() and ".data.deploy" in rerun.stderr


def test_reruns_take_back_their_own_fields(script_env, kserve_namespace, core):
    """The script's way: upstream with --force-conflicts, then the project's field as manager mrhelpers."""
    upstream = yaml.safe_dump(UPSTREAM)
    for attempt in (1, 2):  # the first `up --with-kserve`, then a re-run
        applied = kubectl(script_env, "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=upstream)
        assert applied.returncode == 0, (attempt, applied.stderr)
        configured = step(script_env, "configure_kserve")
        out, err = configured.communicate(timeout=60)
        assert configured.returncode == 0, (attempt, err)
        assert f"--field-manager=mrhelpers -f {CONFIG}" in out
        cm = core.read_namespaced_config_map("inferenceservice-config", "kserve")
        assert json.loads(cm.data["deploy"]) == {"defaultDeploymentMode": "Standard"}, attempt
        assert cm.data["storageInitializer"] == UPSTREAM["data"]["storageInitializer"]  # the rest stays upstream's
        owners = {m.manager: m.fields_v1 for m in cm.metadata.managed_fields}
        assert "f:deploy" in json.dumps(owners["mrhelpers"]) and "f:deploy" not in json.dumps(owners["kubectl"])
