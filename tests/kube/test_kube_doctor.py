"""The install's doctor (setup/cluster_doctor.py) on a cluster, reading the real API: pods whose status is
written through the status subresource (there is no kubelet to write it), the events a kubelet and a
scheduler would post, PVCs that stay Pending (no volume controller runs) with and without a default StorageClass.

What a real API server adds over objects built in a test: validation of every status and event, the
fields it fills in (phase Pending, creation times), list calls across namespaces, and the answer to a
log request for a pod that never ran (which doctor must survive)."""

import pytest
from cluster_doctor import cluster_doctor
from kubernetes import client

from mrhelpers import MRHelpersError, Settings

IMAGE = "registry.example/kfp/image:1"


def make_pod(core, ns, name, status, labels=None):
    body = client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels or {"app": name.rsplit("-", 2)[0]}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="main", image=IMAGE)]),
    )
    core.create_namespaced_pod(ns, body)
    container = {"name": "main", "image": IMAGE, "imageID": "", "ready": False, "restartCount": 0}
    container.update(status.pop("container", {}))
    core.patch_namespaced_pod_status(name, ns, {"status": {"containerStatuses": [container], **status}})
    return core.read_namespaced_pod_status(name, ns)


def waiting(reason, message=""):
    return {"state": {"waiting": {"reason": reason, "message": message}}}


def event(core, ns, pod, reason, message):
    core.create_namespaced_event(ns, client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=f"{pod}.{reason.lower()}"), type="Warning", reason=reason, message=message,
        involved_object=client.V1ObjectReference(kind="Pod", name=pod, namespace=ns, api_version="v1"),
        source=client.V1EventSource(component="kubelet")))  # fmt: skip


def settings(tmp_path, ns):
    return Settings(backend="cluster", namespace=ns, state_dir=tmp_path, registry_ui_url="http://127.0.0.1:9")


def checks(found):
    return [f.check for f in found]


def test_doctor_reads_what_the_api_server_holds(core, namespace, tmp_path):
    ns = namespace
    grpc = make_pod(core, ns, "metadata-grpc-deployment-1-2", {"phase": "Running", "container": {
        **waiting("CrashLoopBackOff", "back-off 5m0s restarting failed container"), "restartCount": 7,
        "lastState": {"terminated": {"exitCode": 139, "reason": "Error"}}}})  # fmt: skip
    assert grpc.status.container_statuses[0].last_state.terminated.exit_code == 139  # stored as written
    make_pod(core, ns, "ml-pipeline-ui-1-2", {"phase": "Pending", "container": waiting(
        "ImagePullBackOff", f'Back-off pulling image "{IMAGE}"')})  # fmt: skip
    event(
        core,
        ns,
        "ml-pipeline-ui-1-2",
        "Failed",
        "Failed to pull image: dial tcp: lookup registry.example: no such host",
    )
    make_pod(core, ns, "model-registry-deployment-7d9-abcde", {"phase": "Pending", "container": waiting(
        "CreateContainerConfigError", 'configmap "model-registry-db-parameters" not found')})  # fmt: skip
    make_pod(core, ns, "mysql-1-2", {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
             "reason": "Unschedulable", "message": "0/1 nodes are available: 1 Insufficient memory."}]})  # fmt: skip
    event(
        core, ns, "mysql-1-2", "FailedScheduling", "0/1 nodes are available: 1 Insufficient memory, 1 Insufficient cpu."
    )
    make_pod(core, ns, "register-model-driver-x", {"phase": "Failed", "container": {
        "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}},
        labels={"pipelines.kubeflow.org/v2_component": "true"})  # fmt: skip
    # doctor asks for that failed pipeline pod's log: the real server cannot give one (no node ran it).

    found = cluster_doctor(settings(tmp_path, ns))
    names = checks(found)
    assert f"{ns}/metadata-grpc-deployment-1-2 CrashLoopBackOff, exit code 139" in names
    (pull,) = [f for f in found if f.check == f"{ns}/ml-pipeline-ui-1-2 ImagePullBackOff"]
    assert "no such host" in pull.cause and "DNS" in pull.fix  # the cause came from the event
    (config,) = [f for f in found if f.check == f"{ns}/model-registry-deployment-7d9-abcde CreateContainerConfigError"]
    assert 'configmap "model-registry-db-parameters" not found' in config.cause
    assert f"{ns}/mysql-1-2 cannot be scheduled: Insufficient cpu, memory" in names
    assert f"{ns}/mysql-1-2 (mysql) not Ready" in names
    assert "Model Registry UI not reachable at http://127.0.0.1:9" in names
    assert not any("RBAC: access denied" in n for n in names)  # no log: the pod has no node to read it from


def test_pending_claims_with_and_without_a_default_storage_class(core, namespace, tmp_path):
    storage = client.StorageV1Api()
    core.create_namespaced_persistent_volume_claim(namespace, client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name="mysql-pv-claim"),
        spec=client.V1PersistentVolumeClaimSpec(access_modes=["ReadWriteOnce"],
            resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}))))  # fmt: skip
    claim = core.read_namespaced_persistent_volume_claim("mysql-pv-claim", namespace)
    assert claim.status.phase == "Pending"  # the API server's default; no volume controller binds it
    mine = f"PVC Pending: {namespace}/mysql-pv-claim"
    (found,) = [f for f in cluster_doctor(settings(tmp_path, namespace)) if mine in f.check]
    assert found.cause == "there is no default StorageClass"
    name = f"{namespace}-standard"[:63]
    storage.create_storage_class(client.V1StorageClass(
        metadata=client.V1ObjectMeta(name=name, annotations={"storageclass.kubernetes.io/is-default-class": "true"}),
        provisioner="rancher.io/local-path"))  # fmt: skip
    try:
        (found,) = [f for f in cluster_doctor(settings(tmp_path, namespace)) if mine in f.check]
        assert found.cause == "the storage provisioner is not running"
    finally:
        storage.delete_storage_class(name)


def test_doctor_with_a_user_who_may_not_list_pods(control_plane, tmp_path, monkeypatch):
    from tests.kube_api import LIMITED_TOKEN

    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig(tmp_path / "k", token=LIMITED_TOKEN)))
    with pytest.raises(
        MRHelpersError, match=r"Cannot read the cluster .*\(HTTP 403 Forbidden\).*kubectl auth can-i list pods -A"
    ):
        cluster_doctor(settings(tmp_path, "kubeflow"))
