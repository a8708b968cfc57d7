"""Every rule of the install's doctor (setup/cluster_doctor.py), on Kubernetes objects built here (the JSON
`kubectl get -o json` prints); the library's own doctor and `make doctor` (setup/doctor.py) when nothing answers.

The install's doctor reading a real API server: tests/kube/test_kube_doctor.py. The library's cluster doctor
against a real registry behind the token: tests/integration/backends/local/test_auth_proxy.py."""

import os
import subprocess
import sys

import pytest
from cluster_doctor import cluster_doctor, diagnose, failed_pipeline_pods
from net import free_port

from mrhelpers import MRHelpersError, Settings
from mrhelpers.backends.doctor import doctor
from tests.conftest import ROOT

READY = [{"type": "Ready", "status": "True"}]
NOT_READY = [{"type": "Ready", "status": "False"}]


def pod(name, ns="kubeflow", app=None, waiting=None, message="", exit_code=None, conditions=READY, phase="Running"):
    status = {
        "name": "main",
        "state": {"waiting": {"reason": waiting, "message": message}} if waiting else {"running": {}},
    }
    if exit_code is not None:
        status["lastState"] = {"terminated": {"exitCode": exit_code}}
    return {
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app or name.rsplit("-", 2)[0]}},
        "status": {"phase": phase, "conditions": conditions, "containerStatuses": [status]},
    }


REGISTRY = pod("model-registry-deployment-7d9-abcde", app="model-registry")
HEALTHY = [
    REGISTRY,
    pod("ml-pipeline-5f6-xyz12", app="ml-pipeline"),
    pod("metadata-grpc-deployment-1-2", app="metadata-grpc-deployment"),
]


def checks(findings):
    return [f.check for f in findings]


def test_a_healthy_cluster_has_no_findings():
    assert diagnose(HEALTHY) == []


def test_metadata_grpc_exit_139():
    bad = pod(
        "metadata-grpc-deployment-1-2",
        app="metadata-grpc-deployment",
        waiting="CrashLoopBackOff",
        exit_code=139,
        conditions=NOT_READY,
    )
    found = diagnose([REGISTRY, bad])
    assert "kubeflow/metadata-grpc-deployment-1-2 CrashLoopBackOff, exit code 139" in checks(found)
    assert any("segfault" in f.cause and "platform-agnostic" in f.fix for f in found)


def test_crash_loop_with_another_exit_code_is_not_called_139():
    bad = pod("metadata-grpc-deployment-1-2", app="metadata-grpc-deployment", waiting="CrashLoopBackOff", exit_code=1)
    assert not any("139" in c for c in checks(diagnose([REGISTRY, bad])))


@pytest.mark.parametrize(
    ("message", "named"),
    [
        ('configmap "model-registry-db-parameters" not found', 'configmap "model-registry-db-parameters" not found'),
        (
            "couldn't find key MYSQL_PASSWORD in Secret kubeflow/model-registry-db-secrets",
            "couldn't find key MYSQL_PASSWORD in Secret kubeflow/model-registry-db-secrets",
        ),
    ],
)
def test_create_container_config_error_names_what_is_missing(message, named):
    bad = pod("model-registry-deployment-7d9-abcde", waiting="CreateContainerConfigError", message=message)
    (finding,) = [f for f in diagnose([bad]) if "CreateContainerConfigError" in f.check]
    assert named in finding.cause and "overlays/db" in finding.fix


@pytest.mark.parametrize(
    ("message", "hint"),
    [
        ("dial tcp: lookup ghcr.io on 10.96.0.10:53: no such host", "DNS"),
        ("429 Too Many Requests - toomanyrequests: You have reached your pull rate limit", "rate limit"),
        ("manifest unknown", "image name and tag"),
    ],
)
def test_image_pull_back_off_hints(message, hint):
    bad = pod(
        "ml-pipeline-ui-1-2", app="ml-pipeline-ui", waiting="ImagePullBackOff", message=message, conditions=NOT_READY
    )
    (finding,) = [f for f in diagnose([REGISTRY, bad]) if "ImagePullBackOff" in f.check]
    assert hint in finding.fix


def test_kfp_core_not_ready_explains_cannot_find_context():
    slow = pod("ml-pipeline-5f6-xyz12", app="ml-pipeline", conditions=NOT_READY)
    (finding,) = diagnose([REGISTRY, slow])
    assert (
        "not Ready" in finding.check
        and "Cannot find context" in finding.cause
        and "kubectl -n kubeflow wait" in finding.fix
    )
    done = pod("mysql-job-1", app="mysql", conditions=NOT_READY, phase="Succeeded")  # finished pods are fine
    assert diagnose([REGISTRY, done]) == []


def test_model_registry_missing_in_the_namespace():
    (finding,) = diagnose(HEALTHY[1:], namespace="kubeflow")
    assert finding.check == "no Model Registry pod in namespace kubeflow"
    assert diagnose(HEALTHY, namespace="team-a")[0].check == "no Model Registry pod in namespace team-a"


def test_pvc_pending_without_default_storage_class_or_provisioner():
    pvc = {"metadata": {"name": "mysql-pv-claim", "namespace": "kubeflow"}, "status": {"phase": "Pending"}}
    standard = {
        "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}
    }
    other = {"metadata": {"name": "other", "annotations": {}}}
    no_default = diagnose(HEALTHY, pvcs=[pvc], storage_classes=[other])
    assert (
        checks(no_default) == ["PVC Pending: kubeflow/mysql-pv-claim"]
        and "no default StorageClass" in no_default[0].cause
    )
    provisioner = pod("local-path-provisioner-1-2", ns="local-path-storage", conditions=NOT_READY)
    stopped = diagnose([*HEALTHY, provisioner], pvcs=[pvc], storage_classes=[standard])
    assert "provisioner is not running" in stopped[0].cause
    running = pod("local-path-provisioner-1-2", ns="local-path-storage")  # local-path binds on a claim's first pod
    assert diagnose([*HEALTHY, running], pvcs=[pvc], storage_classes=[standard]) == []
    bound = dict(pvc, status={"phase": "Bound"})
    assert diagnose(HEALTHY, pvcs=[bound], storage_classes=[]) == []


def test_ui_unreachable_and_istio_rbac():
    found = diagnose(
        HEALTHY,
        ui_unreachable="http://127.0.0.1:8084",
        pipeline_logs={"kubeflow/reg-pod": "HTTP 403 RBAC: access denied", "kubeflow/ok-pod": "fine"},
    )
    assert checks(found) == [
        "kubeflow/reg-pod: RBAC: access denied",
        "Model Registry UI not reachable at http://127.0.0.1:8084",
    ]
    assert "AuthorizationPolicy" in found[0].cause and "port-forward" in found[1].fix


def test_cluster_doctor_without_a_cluster_says_what_to_check(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    with pytest.raises(MRHelpersError, match="kubectl cluster-info"):
        cluster_doctor(Settings(backend="cluster", state_dir=tmp_path))


def test_the_librarys_cluster_doctor_names_the_port_forward_and_make_doctor(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))  # it needs no Kubernetes API
    registry, kfp = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    found = doctor(Settings(backend="cluster", state_dir=tmp_path, registry_url=registry, kfp_host=kfp))
    assert [f.check for f in found] == [
        f"the Model Registry at {registry} does not answer",
        f"the KFP API at {kfp} does not answer",
    ]
    assert "not reachable" in found[0].cause and "does not answer" in found[1].cause
    assert all("`make cluster-forward`" in f.fix and "`make doctor`" in f.fix for f in found)


def test_make_doctor_on_a_cluster_says_what_the_library_finds_then_why_it_cannot_read_the_cluster(tmp_path):
    registry, kfp = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "missing"), "MRH_BACKEND": "cluster",
           "MRH_STATE_DIR": str(tmp_path), "MRH_REGISTRY_URL": registry, "MRH_KFP_HOST": kfp}  # fmt: skip
    cli = [sys.executable, str(ROOT / "setup" / "doctor.py")]
    run = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    problems = [line for line in run.stdout.splitlines() if line.startswith("PROBLEM: ")]
    assert problems == [f"PROBLEM: the Model Registry at {registry} does not answer",
                        f"PROBLEM: the KFP API at {kfp} does not answer"]  # fmt: skip
    error = run.stderr.splitlines()[-1]
    assert error.startswith("error: No cluster to diagnose") and "kubectl cluster-info" in error


def test_local_doctor_reports_a_stopped_stack(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    [found] = doctor(Settings(state_dir=tmp_path, registry_url=url))
    assert found.check == f"the Model Registry at {url} does not answer" and "`make up`" in found.fix
    assert found.cause == f"no local stack: {tmp_path / 'state.json'} does not exist"


def pipeline_pod(name, exit_code, created):
    p = pod(name, waiting=None)
    p["metadata"]["labels"]["pipelines.kubeflow.org/v2_component"] = "true"
    p["metadata"]["creationTimestamp"] = created
    p["status"]["phase"] = "Failed" if exit_code else "Succeeded"
    p["status"]["containerStatuses"][0].update(
        state={"terminated": {"exitCode": exit_code}}, image="img", imageID="id", ready=False, restartCount=0
    )
    return p


def test_failed_pipeline_pods_newest_first():
    pods = [pipeline_pod("a", 1, "2026-01-01T00:00:00Z"), pipeline_pod("b", 0, "2026-01-02T00:00:00Z"),
            pipeline_pod("c", 2, "2026-01-03T00:00:00Z"), *HEALTHY]  # fmt: skip
    assert [p["metadata"]["name"] for p in failed_pipeline_pods(pods)] == ["c", "a"]


def test_kfp_pods_are_recognised_by_their_real_labels():
    """KFP's metadata-grpc pods have no `app` label (only `component: metadata-grpc-server`)."""
    grpc = pod("metadata-grpc-deployment-7c9b8d6f5-x2v4k", conditions=NOT_READY)
    grpc["metadata"]["labels"] = {"component": "metadata-grpc-server", "application-crd-id": "kubeflow-pipelines"}
    found = diagnose([REGISTRY, grpc])
    assert checks(found) == ["kubeflow/metadata-grpc-deployment-7c9b8d6f5-x2v4k (metadata-grpc-deployment) not Ready"]


def event(name, reason, message, ns="kubeflow", kind="Pod"):
    return {"metadata": {"name": f"{name}.1", "namespace": ns}, "reason": reason, "message": message,
            "involvedObject": {"kind": kind, "name": name, "namespace": ns}}  # fmt: skip


def test_image_pull_cause_comes_from_the_pods_events():
    backoff = 'Back-off pulling image "ghcr.io/kubeflow/kfp-frontend:2.17.0"'
    bad = pod(
        "ml-pipeline-ui-1-2", app="ml-pipeline-ui", waiting="ImagePullBackOff", message=backoff, conditions=NOT_READY
    )
    without = [f for f in diagnose([REGISTRY, bad]) if "ImagePullBackOff" in f.check]
    assert "DNS" not in without[0].fix  # the status alone says nothing of why
    events = [event("ml-pipeline-ui-1-2", "Failed", "Failed to pull image: dial tcp: lookup ghcr.io: no such host"),
              event("other-pod-1-2", "Failed", "toomanyrequests")]  # fmt: skip
    (found,) = [f for f in diagnose([REGISTRY, bad], events=events) if "ImagePullBackOff" in f.check]
    assert "DNS" in found.fix and "toomanyrequests" not in found.cause


def test_failed_scheduling_says_give_docker_more_memory():
    message = "0/2 nodes are available: 2 Insufficient memory, 1 Insufficient cpu. preemption: 0/2 nodes"
    taint = "0/2 nodes are available: 2 node(s) had untolerated taint"
    events = [event("mysql-1-2", "FailedScheduling", message), event("mysql-1-2", "FailedScheduling", message),
              event("cache-1-2", "FailedScheduling", taint)]  # fmt: skip
    found = diagnose([REGISTRY], events=events)
    assert checks(found) == ["kubeflow/mysql-1-2 cannot be scheduled: Insufficient cpu, memory"]
    assert "Docker more memory" in found[0].fix
