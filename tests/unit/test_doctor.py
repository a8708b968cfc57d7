"""Every doctor rule, on Kubernetes objects built here (the JSON `kubectl get -o json` prints)."""

import pytest

from mrhelpers import MRHelpersError, Settings
from mrhelpers.doctor import diagnose, doctor

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
    assert diagnose(HEALTHY, ui_reachable=True) == []


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
    stopped = diagnose(
        HEALTHY,
        pvcs=[pvc],
        storage_classes=[standard],
        provisioner_pods=[pod("local-path-provisioner-1-2", ns="local-path-storage", conditions=NOT_READY)],
    )
    assert "provisioner is not running" in stopped[0].cause
    bound = dict(pvc, status={"phase": "Bound"})
    assert diagnose(HEALTHY, pvcs=[bound], storage_classes=[]) == []


def test_ui_unreachable_and_istio_rbac():
    found = diagnose(
        HEALTHY,
        ui_reachable=False,
        ui_url="http://127.0.0.1:8084",
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
        doctor(Settings(backend="cluster", state_dir=tmp_path))


def test_local_doctor_reports_a_stopped_stack(tmp_path):
    found = doctor(Settings(state_dir=tmp_path))
    assert checks(found) == ["mariadb is stopped", "registry is stopped"]
    assert all("mrhelpers up" in f.fix for f in found)
